"""An in-place error inside a torch.compile region (issue 16, item 3), with real torch.compile.

The backend is aot_eager: it runs AOTAutograd, which is where the in-place error is raised at
compile time, exactly as Inductor does; Inductor's C++ build took about 60 s per process on this
2-core machine, past what a test may take.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import OWN_CASES

from inplace_magic.pipeline.compiled_region import verify_eagerly, wrapped_error
from inplace_magic.pipeline.core import CheckResult, check_cells, find_fixes
from inplace_magic.replay.cells import read_cells

CASE = OWN_CASES / "compile_region" / "sigmoid_output_mul_inside_compiled_fn.py"


@pytest.fixture(scope="module")
def checked() -> tuple[list, CheckResult]:  # type: ignore[type-arg]
    cells = read_cells(str(CASE))
    return cells, check_cells(cells, str(CASE), with_fixes=False)


def test_the_wrapped_error_is_unwrapped_and_diagnosed_at_the_users_line(checked) -> None:  # type: ignore[no-untyped-def]
    _, result = checked
    assert type(result.exception).__name__ == "BackendCompilerFailed"  # the user's exception, as raised
    assert wrapped_error(result.exception) is not None
    assert "BackendCompilerFailed" in result.traceback
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.reproduced
    assert diagnosis.error.type == "RuntimeError"
    assert diagnosis.error.message.startswith("one of the variables needed for gradient computation")
    writer, saver = diagnosis.inplace, diagnosis.saved_by
    assert writer is not None and writer.location is not None and saver is not None and saver.location
    assert (writer.location.cell, writer.location.line, writer.location.code) == (0, 10, "y.mul_(2)")
    assert (saver.location.cell, saver.location.line) == (0, 9)
    assert any("torch.compile region (backend 'aot_eager')" in n for n in diagnosis.notes)


def test_a_plain_error_is_not_taken_for_a_compiled_one() -> None:
    assert wrapped_error(RuntimeError("one of the variables needed for gradient computation")) is None


def test_fixes_are_verified_eagerly_too(checked, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cells, result = checked
    diagnosis = result.diagnosis
    out_of_place = next(
        f for f in find_fixes(cells, diagnosis, str(CASE), verify=False) if "y.mul(2)" in f["title"]
    )
    unchanged = {"title": "no change", "verified": True, "cells": {"0": cells[0].source}, "notes": []}
    # as the compiled sandbox run left them: both taken as verified compiled
    diagnosis.fixes = [unchanged, {**out_of_place, "verified": True}]
    runs = verify_eagerly(diagnosis, cells, str(CASE), 30.0, "python", False)
    assert runs >= 2
    by_title = {f["title"]: f for f in diagnosis.fixes}
    assert by_title[out_of_place["title"]]["verified"]
    assert "Verified eagerly too" in by_title[out_of_place["title"]]["notes"][-1]
    assert not by_title["no change"]["verified"]  # eagerly the original error is raised
    assert "with torch.compile off the fixed cells raise RuntimeError" in by_title["no change"]["notes"][-1]
    assert diagnosis.fixes[0]["title"] == out_of_place["title"]
