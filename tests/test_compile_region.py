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


COMPILED_CELL = """import torch
torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)
x = torch.randn(2, 4)

@torch.compile(backend="aot_eager")
def gate(x, w):
    y = torch.sigmoid(x @ w)
    y.mul_(2)
    return y.sum()
"""
FAILING_CELL = "loss = gate(x, w)\nloss.backward()\n"


@pytest.fixture()
def ip():  # type: ignore[no-untyped-def]
    """A real IPython shell; cells stored in its history, so each gets its own prompt number."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()  # once per process; later calls leave the shell as it is
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "inplace_magic")
    assert shell.run_cell(COMPILED_CELL, store_history=True).success
    yield shell
    shell.run_line_magic("gradcheck", "off")
    shell.run_line_magic("unload_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")


def _assert_unwrapped_at_the_users_line(shell, result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    import inplace_magic

    # the user's exception, as raised: the wrapper, not its cause
    assert type(result.error_in_exec).__name__ == "BackendCompilerFailed"
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["reproduced"]
    assert diagnosis["error"]["type"] == "RuntimeError"
    assert diagnosis["error"]["message"].startswith("one of the variables needed for gradient computation")
    defining = shell.execution_count - 2  # the cell that defined gate(), before the failing one
    assert (diagnosis["inplace"]["cell"], diagnosis["inplace"]["line"]) == (defining, 9)
    assert diagnosis["inplace"]["code"] == "y.mul_(2)"
    assert (diagnosis["saved_by"]["cell"], diagnosis["saved_by"]["line"]) == (defining, 8)
    assert any("torch.compile region (backend 'aot_eager')" in note for note in diagnosis["notes"])
    return diagnosis


def test_the_notebook_unwraps_a_compiled_region_under_gradcheck(ip) -> None:  # type: ignore[no-untyped-def]
    result = ip.run_cell("%%gradcheck\n" + FAILING_CELL, store_history=True)
    diagnosis = _assert_unwrapped_at_the_users_line(ip, result)
    best = diagnosis["fixes"][0]
    # verified in the kernel, where the fixed cell compiles gate() again
    assert best["title"] == "Use `y = y.mul(2)` instead of `y.mul_(2)`" and best["verified"]


def test_the_notebook_unwraps_a_compiled_region_with_gradcheck_on(ip) -> None:  # type: ignore[no-untyped-def]
    ip.run_line_magic("gradcheck", "on")
    result = ip.run_cell(FAILING_CELL, store_history=True)
    _assert_unwrapped_at_the_users_line(ip, result)


FRESH_KERNEL = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

config = Config()
config.HistoryManager.hist_file = ":memory:"
shell = InteractiveShell(config=config)
shell.run_line_magic("load_ext", "inplace_magic")
shell.run_cell("import sys\\nseen = 'torch._dynamo' in sys.modules", store_history=True)
print(json.dumps({"dynamo_before_the_cell": shell.user_ns["seen"]}))
"""


def test_a_cell_right_after_load_ext_waits_for_the_warm_ups_torch_imports() -> None:
    """%load_ext imports torch._dynamo in the background; a cell's @torch.compile importing it at the
    same time failed (seen once here: _DeadlockError, then "partially initialized module
    torch._inductor.utils", timing-dependent). A cell that comes during that import waits for it: the
    first cell's code already finds it imported."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FRESH_KERNEL], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"dynamo_before_the_cell": True}
