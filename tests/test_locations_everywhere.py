"""No blank locations: ``inplace-magic check --json`` names a place (cell and line, or file and line,
with the code) for ``inplace`` on every case of the family, and for ``saved_by`` wherever autograd
saved something: the shared cases, ours, and every generated residual variant that torch rejects.

"Autograd saved something" is decided outside the engine: a case's annotation names a saver, and a
generated variant's saver is the line anomaly mode reports.

tests/cases/diagnosis_only holds cases whose fixes the sandbox cannot verify (nested tensors, and
texts only a replay makes ours: the sandbox classifies a run's error by its text alone), so
tests/test_fix_cases.py does not take them; their diagnosis is checked here as tests/test_cases.py
checks the others.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import OWN_CASES, case_ids, positive_cases
from skip_variants import Variant, variants
from test_cases import _expected_locations, _got_locations
from test_skip_forms import _anomaly_saver, _plain_run

from inplace_magic.record.family import classify

_KEYS = (
    "status",
    "error",
    "kind",
    "member",
    "inplace",
    "saved_by",
    "skip",
    "tensor",
    "explanation",
    "limits",
)


def _assert_located(site: dict[str, Any] | None, what: str) -> None:
    assert site is not None, f"{what}: missing"
    assert ("cell" in site) != ("file" in site), f"{what}: neither a cell nor a file: {site}"
    assert isinstance(site.get("line"), int) and site["line"] >= 1, f"{what}: no line: {site}"
    assert site.get("code"), f"{what}: no code at {site}"


def _assert_complete(got: dict[str, Any]) -> None:
    missing = [key for key in _KEYS if key not in got]
    assert not missing, missing
    assert got["explanation"] and got["headline"]


DIAGNOSIS_ONLY = case_ids(OWN_CASES / "diagnosis_only")


@pytest.mark.parametrize("case", positive_cases() + DIAGNOSIS_ONLY, ids=lambda p: p.stem)
def test_every_case_names_the_writer_and_the_saver_with_a_location(case: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(case.with_suffix(".json").read_text())
    code, out, _ = run_cli("check", str(case), "--json", "--no-fix")
    got = json.loads(out)
    assert code == 1, got
    _assert_complete(got)
    _assert_located(got["inplace"], "inplace")
    if expected.get("saved_by"):
        _assert_located(got["saved_by"], "saved_by")
    if expected.get("skip"):
        _assert_located(got["skip"]["merge"], "skip.merge")
        _assert_located(got["skip"]["from"], "skip.from")
    elif "skip" in expected:
        assert got["skip"] is None, got["skip"]  # no branch is invented where there is none
    if "member" in expected:
        assert got["member"] == expected["member"]


@pytest.fixture
def variant_folder(tmp_path: Path):  # type: ignore[no-untyped-def]
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("blocks_"):
            del sys.modules[name]


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.id)
def test_every_generated_variant_names_its_locations(variant: Variant, variant_folder: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = variant.write(variant_folder)
    plain, trace = _plain_run(path, anomaly=True)
    _, out, _ = run_cli("check", str(path), "--json", "--no-fix")
    got = json.loads(out)
    if plain is None or classify(plain) is None:  # torch accepts it: no location may be made up
        assert got["inplace"] is None and got["saved_by"] is None
        return
    _assert_complete(got)
    _assert_located(got["inplace"], "inplace")
    if _anomaly_saver(trace, variant.helper) is not None:
        _assert_located(got["saved_by"], "saved_by")
    _assert_located(got["skip"]["merge"], "skip.merge")


@pytest.mark.parametrize("case", DIAGNOSIS_ONLY, ids=lambda p: p.stem)
def test_diagnosis_only_cases_are_diagnosed_exactly(case: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(case.with_suffix(".json").read_text())
    _, out, _ = run_cli("check", str(case), "--json", "--no-fix")
    got = json.loads(out)
    assert (got["status"], got["kind"], got["reproduced"]) == ("inplace_error", expected["category"], True)
    assert _got_locations(got["inplace"]) & _expected_locations(expected["inplace"]), got["inplace"]
    if expected.get("saved_by"):
        assert _got_locations(got["saved_by"]) & _expected_locations(expected["saved_by"]), got["saved_by"]
    error_type = expected.get("error", "RuntimeError:").split(":")[0]
    assert got["error"]["type"] == error_type  # the user's own exception, never replaced
