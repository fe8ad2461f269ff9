"""Module hooks, custom autograd Functions, checkpointing and torch.func: what the diagnosis says
beyond its locations (tests/test_cases.py checks those): which module's hook made a view, which
Function and which line of its forward, who saved for a checkpoint, and the recorder's own hooks
giving way where torch turns saved-tensor hooks off."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inplace_magic.diagnose.diagnosis import Diagnosis
from inplace_magic.fix import find_fixes
from inplace_magic.pipeline.core import check_cells
from inplace_magic.record.recorder import Recorder
from inplace_magic.replay.cells import read_cells

CASES = Path(__file__).parent / "cases"


def diagnosed(name: str) -> Diagnosis:
    path = CASES / f"{name}.py"
    result = check_cells(read_cells(str(path)), script_path=str(path), with_fixes=False)
    assert result.diagnosis is not None, result.status
    return result.diagnosis


def test_a_hooked_modules_output_view_is_explained_as_made_by_that_hook() -> None:
    d = diagnosed("backward_hook_output_iadd")
    assert d.saved_by is not None and d.saved_by.op == "BackwardHookFunction"
    assert d.saved_by.module == "encoder"  # the hooked module, not the model that called it
    assert d.saved_by.role is not None and "full backward hook" in d.saved_by.role
    assert "outputs" in d.saved_by.role
    assert d.inplace is not None and d.inplace.location is not None and d.inplace.location.code == "h += 1.0"
    assert "clone" in d.explanation and "hooked module" in d.explanation


def test_a_hooked_modules_input_written_inside_it_names_the_input_wrapping() -> None:
    d = diagnosed("backward_hook_input_inplace_in_module")
    assert d.saved_by is not None and d.saved_by.module == "scale" and "inputs" in (d.saved_by.role or "")
    assert d.inplace is not None and d.inplace.module == "scale"
    assert d.inplace.location is not None and d.inplace.location.code == "x.mul_(0.5)"


def test_a_pre_hook_is_named_as_such_and_the_in_place_module_is_located_where_it_was_built() -> None:
    d = diagnosed("backward_pre_hook_then_relu_inplace")
    assert d.saved_by is not None and "pre-hook" in (d.saved_by.role or "") and d.saved_by.module == "0"
    assert d.inplace is not None and d.inplace.module == "1"
    assert d.inplace.defined_at is not None and d.inplace.defined_at.code == "nn.ReLU(inplace=True),"


def test_hook_views_get_a_verified_fix() -> None:
    path = CASES / "backward_hook_output_iadd.py"
    cells = read_cells(str(path))
    result = check_cells(cells, script_path=str(path), with_fixes=False)
    assert result.diagnosis is not None
    fixes = find_fixes(cells, result.diagnosis.to_json(), str(path))
    assert fixes and fixes[0]["verified"], fixes[:1]
    assert {f["kind"] for f in fixes if f["verified"]} >= {"augmented_assign", "view_clone"}


def test_a_write_inside_a_functions_forward_names_the_function_and_its_call_site() -> None:
    d = diagnosed("function_mark_dirty_on_sigmoid_output")
    writer = d.inplace
    assert writer is not None and writer.autograd_function == "ScaleInPlace"
    assert writer.location is not None and writer.location.function == "forward"
    assert writer.stack and writer.stack[0].code == "out = ScaleInPlace.apply(g, 2.0)"
    assert "ScaleInPlace.forward" in d.headline and "mark_dirty" in d.explanation


def test_save_for_backward_is_located_in_forward_with_the_call_beside_it() -> None:
    d = diagnosed("function_saved_input_modified_later")
    saver = d.saved_by
    assert saver is not None and saver.autograd_function == "Square" and saver.op == "Square.apply"
    assert saver.location is not None and saver.location.code == "ctx.save_for_backward(x)"
    assert saver.stack and saver.stack[0].code == "y = Square.apply(h)"


def test_a_view_returned_by_a_function_names_the_function() -> None:
    d = diagnosed("function_view_output_modified")
    assert d.saved_by is not None and d.saved_by.autograd_function == "Flatten"
    assert d.saved_by.location is not None and d.saved_by.location.code == "return x.view(-1)"
    assert "Flatten" in (d.saved_by.role or "")


@pytest.mark.parametrize(
    "name", ["checkpoint_input_modified_after", "checkpoint_reentrant_input_modified_after"]
)
def test_checkpoint_is_named_as_the_saver_of_its_inputs(name: str) -> None:
    d = diagnosed(name)
    assert d.saved_by is not None and d.saved_by.op == "torch.utils.checkpoint"
    assert d.saved_by.location is not None and d.saved_by.location.code.startswith(
        "out = checkpoint(block, h"
    )
    assert (
        d.inplace is not None and d.inplace.location is not None and d.inplace.location.code == "h.mul_(0.5)"
    )


def test_torch_func_runs_inside_the_replay_and_the_patch_is_undone() -> None:
    original = torch.autograd.graph.disable_saved_tensors_hooks

    def energy(x: torch.Tensor) -> torch.Tensor:
        return (x**3).sum()

    x = torch.randn(3)
    with Recorder() as recorder:
        gradient = torch.func.grad(energy)(x)
        y = torch.sigmoid(x.requires_grad_() * 2)  # saved by the recorder: its hooks are back
    assert torch.allclose(gradient, 3 * x**2)
    assert torch.autograd.graph.disable_saved_tensors_hooks is original
    assert recorder.trace.unhooked and recorder.trace.saves, "the region is recorded, saves after it too"
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None
    assert y.shape == (3,)


def test_user_saved_tensor_hooks_take_over_their_region_without_breaking_ours() -> None:
    lin = torch.nn.Linear(3, 3)
    with Recorder() as recorder:
        with torch.autograd.graph.save_on_cpu():
            inner = lin(torch.randn(2, 3))
        outer = torch.sigmoid(inner)
        saves = len(recorder.trace.saves)
        (outer * 1).sum().backward()
    assert saves >= 1  # the sigmoid outside the user's region is ours
    assert lin.weight.grad is not None
