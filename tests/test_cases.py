"""The CLI on every real-world case and negative (../shared/cases and tests/cases), scored the way
../shared/tools/score_cases.py scores it: kind, writer, saver and merge locations must match."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import negative_cases, positive_cases


def _expected_locations(expected: dict[str, Any]) -> set[tuple[Any, int]]:
    out = set()
    for item in [expected, *(expected.get("alt") or [])]:
        where = item["cell"] if "cell" in item else os.path.basename(item["file"])
        out.add((where, item["line"]))
    return out


def _got_locations(got: dict[str, Any] | None) -> set[tuple[Any, int]]:
    out: set[tuple[Any, int]] = set()
    for item in [got or {}, (got or {}).get("defined_at") or {}]:
        if "line" in item and ("cell" in item or "file" in item):
            where = item["cell"] if "cell" in item else os.path.basename(item["file"])
            out.add((where, item["line"]))
    return out


@pytest.mark.parametrize("case", positive_cases(), ids=lambda p: p.stem)
def test_case_is_diagnosed(case: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(case.with_suffix(".json").read_text())
    code, out, _ = run_cli("check", str(case), "--json", "--no-fix")
    got = json.loads(out)
    assert (code, got["status"]) == (1, "inplace_error")
    assert got["kind"] == expected["category"]
    assert got["reproduced"], got["notes"]  # the replay failed where the plain run failed
    assert _got_locations(got["inplace"]) & _expected_locations(expected["inplace"]), got["inplace"]
    if expected.get("saved_by"):
        assert _got_locations(got["saved_by"]) & _expected_locations(expected["saved_by"]), got["saved_by"]
    if expected.get("skip") and expected["skip"].get("merge"):
        merge = (got.get("skip") or {}).get("merge")
        assert _got_locations(merge) & _expected_locations(expected["skip"]["merge"]), got.get("skip")
    elif "skip" in expected and expected["skip"] is None:
        # stricter than the shared scorer, which reads only the merge it expects: no branch invented
        assert got.get("skip") is None, got["skip"]
    # the original error is never lost
    # (a jagged nested tensor turns the version error into a NotImplementedError: its "error" says so)
    error_type = expected.get("error", "RuntimeError:").split(":")[0]
    assert got["error"]["type"] == error_type and got["error"]["message"]
    if "error" in expected:
        assert expected["error"].startswith(f"{error_type}: {got['error']['message'][:60]}")


@pytest.mark.parametrize("case", negative_cases(), ids=lambda p: p.stem)
def test_negative_is_not_diagnosed(case: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(case.with_suffix(".json").read_text())
    code, out, _ = run_cli("check", str(case), "--json", "--no-fix")
    got = json.loads(out)
    assert got["status"] in ("ok", "other_error")
    assert got["inplace"] is None and got["kind"] is None
    raises = (expected.get("observed") or {}).get("raises")
    if raises:
        assert (code, got["status"]) == (2, "other_error")
        assert raises.startswith(got["error"]["type"])
    else:
        assert (code, got["status"]) == (0, "ok")
