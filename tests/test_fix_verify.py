"""Verification for real: the sandbox run, the gradient reference, chaining, and the user's state."""

from __future__ import annotations

import textwrap

import torch

from inplace_magic.fix import find_fixes
from inplace_magic.pipeline.core import check_cells
from inplace_magic.replay.cells import split_percent

TWO_WRITES = """# %%
import torch
x = torch.randn(4, requires_grad=True)
# %%
a = x.exp()
a += 1
b = a.sigmoid()
b.mul_(2)
b.sum().backward()
"""


def test_a_fix_that_uncovers_the_next_error_is_chained() -> None:
    cells = split_percent(TWO_WRITES)
    diagnosis = check_cells(cells, with_fixes=False).to_json()
    assert diagnosis["inplace"]["code"] == "b.mul_(2)"
    fixes = find_fixes(cells, diagnosis)
    best = fixes[0]
    assert best["verified"] and best["preserves_gradients"] is True
    assert best["cells"]["1"] == "a = x.exp()\na = a + 1\nb = a.sigmoid()\nb = b.mul(2)\nb.sum().backward()\n"
    assert "uncovers the next in-place error" in best["description"]
    single = next(
        f
        for f in fixes
        if f["cells"]["1"] == TWO_WRITES.split("# %%\n")[2].replace("b.mul_(2)", "b = b.mul(2)")
    )
    assert not single["verified"] and single["next_error"]["kind"] == "version_counter"
    assert any("a += 1" in note for note in single["notes"])


def test_a_flag_that_does_not_help_is_not_offered_as_verified() -> None:
    # nn.ReLU saves its output even out of place, so only rewriting `+=` fixes this.
    source = textwrap.dedent(
        """
        # %%
        import torch
        import torch.nn as nn

        torch.manual_seed(0)
        lin, relu = nn.Linear(3, 3), nn.ReLU(inplace=True)
        # %%
        y = relu(lin(torch.randn(2, 3)))
        y += 1
        y.sum().backward()
        """
    ).lstrip("\n")
    cells = split_percent(source)
    diagnosis = check_cells(cells, with_fixes=False).to_json()
    fixes = find_fixes(cells, diagnosis)
    by_kind = {f["kind"]: f for f in fixes}
    assert fixes[0]["kind"] == "augmented_assign" and fixes[0]["preserves_gradients"] is True
    if "inplace_kwarg" in by_kind:
        assert not by_kind["inplace_kwarg"]["verified"]


def test_a_fix_that_changes_the_gradients_is_not_called_gradient_preserving() -> None:
    # Clamping a copy leaves the stored tensor unclamped: the later use sees other values.
    source = textwrap.dedent(
        """
        # %%
        import torch
        w = torch.tensor([0.5, 3.0, -4.0], requires_grad=True)
        # %%
        e = w.exp()
        e.clamp_(max=5.0)
        (e * e).sum().backward()
        """
    ).lstrip("\n")
    cells = split_percent(source)
    diagnosis = check_cells(cells, with_fixes=False).to_json()
    fixes = find_fixes(cells, diagnosis)
    assert fixes[0]["verified"] and fixes[0]["preserves_gradients"] is True
    for fix in fixes:
        if fix["verified"] and fix["preserves_gradients"] is False:
            assert any("differ" in note for note in fix["notes"])


def test_the_user_process_is_untouched_and_output_does_not_confuse_the_sandbox() -> None:
    source = textwrap.dedent(
        """
        # %%
        import torch
        torch.set_grad_enabled(True)
        print('{"id": "c0", "error": null}')
        x = torch.randn(3, requires_grad=True)
        # %%
        y = x.sigmoid()
        y += 1
        y.sum().backward()
        """
    ).lstrip("\n")
    cells = split_percent(source)
    state = torch.get_rng_state()
    diagnosis = check_cells(cells, with_fixes=False).to_json()
    torch.set_rng_state(state)
    backward = torch.autograd.backward
    fixes = find_fixes(cells, diagnosis)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.autograd.backward is backward
    assert fixes[0]["kind"] == "augmented_assign" and fixes[0]["verified"]


def test_code_that_no_longer_fails_is_not_verified() -> None:
    # A stale diagnosis (the code was edited since): nothing to verify against.
    cells = split_percent(
        "# %%\nimport torch\nx = torch.randn(3, requires_grad=True)\ny = x * 2\ny.sum().backward()\n"
    )
    fixes = find_fixes(
        cells, {"kind": "version_counter", "inplace": {"cell": 0, "line": 3, "code": "y = x * 2"}}
    )
    assert fixes, "the fallback is still proposed"
    assert all(not f["verified"] for f in fixes)
