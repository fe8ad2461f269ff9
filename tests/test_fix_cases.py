"""Every real-world case through ``find_fixes`` with verification, as the project is judged.

The diagnosis is built from the case's expected ``inplace``/``saved_by``/``skip`` (the engine's JSON
shape); the best fix must be verified, and its cells, run as a plain Python script, must no longer
raise. Cases whose fix is meant to preserve the math must also match the gradient reference.

``find_fixes`` starts its real sandbox process, as the command does. The fixed script is run as
``python SCRIPT`` in the case's folder by a fork of a zygote that imported torch once
(tests/zygote.py; test_zygote.py shows the fork is the same as a new interpreter): the subject is
what the fixed code does, and each new interpreter would pay its start-up and torch import again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zygote
from conftest import positive_cases

from inplace_magic.fix import find_fixes
from inplace_magic.replay.cells import Cell, read_cells

_SITE_KEYS = ("cell", "file", "line", "code", "module", "role")


def as_diagnosis(expected: dict[str, Any], cells: list[Cell], case: Path) -> dict[str, Any]:
    """The engine's diagnosis shape, from a case's annotations (``alt`` lines are left out)."""

    def site(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if not value:
            return None
        out = {k: value[k] for k in _SITE_KEYS if k in value}
        if "file" in out:
            out["file"] = str(case.parent / out["file"])
        return out

    verification = expected.get("verification") or {}
    raised = (verification.get("observed") or {}).get("raise_frame") or {}
    inplace = site(expected["inplace"])
    return {
        "status": "inplace_error",
        "kind": expected["category"],
        "error": {
            "type": "RuntimeError",
            "message": expected.get("error", ""),
            "cell": raised.get("cell", verification.get("raised_in_cell", cells[-1].index)),
            "line": raised.get("line"),
        },
        "inplace": inplace,
        "saved_by": site(expected.get("saved_by")),
        "skip": expected.get("skip"),
        "tensor": None,
        "optimizer_step": bool(inplace and re.search(r"\.step\(", inplace.get("code", ""))),
        "fixes": [],
    }


def percent_script(cells: list[Cell], changes: dict[str, str]) -> str:
    return "".join(f"# %%\n{changes.get(str(c.index), c.source)}\n" for c in cells if c.kind == "code")


def _cell_sites(expected: dict[str, Any]) -> bool:
    return any("cell" in (expected.get(k) or {}) for k in ("inplace", "saved_by"))


@pytest.fixture(scope="module")
def python() -> Iterator[zygote.Zygote]:
    """``python SCRIPT`` forked from an interpreter that imported torch (one per xdist worker)."""
    started = zygote.Zygote(preload=("torch",))
    yield started
    started.close()


@pytest.mark.parametrize("case", positive_cases(), ids=lambda p: p.stem)
def test_best_fix_is_verified_and_removes_the_error(
    case: Path, tmp_path: Path, python: zygote.Zygote
) -> None:
    expected = json.loads(case.with_suffix(".json").read_text())
    if not _cell_sites(expected):
        pytest.skip("the in-place op is in an imported file: file edits are not offered yet")
    cells = read_cells(str(case))
    before = sorted(os.listdir(case.parent))

    fixes = find_fixes(cells, as_diagnosis(expected, cells, case), str(case))

    assert sorted(os.listdir(case.parent)) == before, "find_fixes must not write files"
    assert fixes, "no fix"
    best = fixes[0]
    assert best["verified"], best["notes"]
    if expected.get("verification", {}).get("fix_preserves_forward"):
        # A view error raised in the forward leaves no reference to compare with (the original
        # fails before any backward even under allow_mutation_on_saved_tensors): None, not False.
        assert best["preserves_gradients"] is not False, best["notes"]
        if expected["category"] == "version_counter":
            assert best["preserves_gradients"] is True, best["notes"]
    if best["kind"] == "reorder_step":
        assert best["changes_semantics"] and best["preserves_gradients"] is False

    script = tmp_path / case.name
    script.write_text(percent_script(cells, best["cells"]))
    done = python.run([str(script)], cwd=case.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
