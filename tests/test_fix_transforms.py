"""Golden before/after pairs for every fix kind, on small inline cells (LibCST's CodemodTest style).

These check the rewrites only (``verify=False``); tests/test_fix_cases.py runs fixes for real.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from inplace_magic.fix import find_fixes
from inplace_magic.replay.cells import Cell


def diagnosis(
    kind: str = "version_counter",
    inplace: tuple[int, int] | None = None,
    saved_by: tuple[int, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    def site(where: tuple[int, int] | None) -> dict[str, Any] | None:
        return {"cell": where[0], "line": where[1], "code": ""} if where else None

    return {
        "status": "inplace_error",
        "kind": kind,
        "inplace": site(inplace),
        "saved_by": site(saved_by),
        **extra,
    }


def cells_of(*sources: str) -> list[Cell]:
    return [Cell(i, textwrap.dedent(s).lstrip("\n")) for i, s in enumerate(sources)]


def rewrites(cells: list[Cell], diag: dict[str, Any], kind: str) -> list[dict[str, str]]:
    return [f["cells"] for f in find_fixes(cells, diag, verify=False) if f["kind"] == kind]


def only(source: str, diag: dict[str, Any], kind: str) -> str:
    found = rewrites(cells_of(source), diag, kind)
    assert found, f"no {kind} fix"
    return found[0]["0"]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ------------------------------------------------------------------------------------ inplace_kwarg


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("act = nn.ReLU(inplace=True)", "act = nn.ReLU()"),
        ("act = nn.ReLU(True)", "act = nn.ReLU()"),
        ("act = torch.nn.LeakyReLU(0.2, True)", "act = torch.nn.LeakyReLU(0.2)"),
        ("act = nn.LeakyReLU(negative_slope=0.2, inplace=True)", "act = nn.LeakyReLU(negative_slope=0.2)"),
        ("act = nn.ELU(alpha=1.0, inplace=True)", "act = nn.ELU(alpha=1.0)"),
        ("act = nn.Hardtanh(-1, 1, True)", "act = nn.Hardtanh(-1, 1)"),
        ("act = nn.Threshold(0.1, 0.0, inplace=True)", "act = nn.Threshold(0.1, 0.0)"),
        ("drop = nn.Dropout(p, inplace=flag)", "drop = nn.Dropout(p, inplace=False)"),
        ("drop = nn.Dropout2d(0.5, True, )", "drop = nn.Dropout2d(0.5, )"),
        ("y = F.relu(x, inplace=True)", "y = F.relu(x)"),
        ("y = F.leaky_relu(x, 0.2, True)", "y = F.leaky_relu(x, 0.2)"),
        ("y = F.dropout(x, 0.1, self.training, True)", "y = F.dropout(x, 0.1, self.training)"),
        ("y = torch.nn.functional.elu(x, inplace=True)", "y = torch.nn.functional.elu(x)"),
        ("act = SiLU(inplace=True)", "act = SiLU()"),
    ],
)
def test_inplace_flag_off(before: str, after: str) -> None:
    assert only(before + "\n", diagnosis(inplace=(0, 1)), "inplace_kwarg") == after + "\n"


def test_inplace_flag_keeps_formatting_of_sequential_entries() -> None:
    before = """
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3),  # stem
            nn.ReLU(inplace=True),  # in place to save memory
            nn.Conv2d(8, 8, 3),
        )
    """
    after = """
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3),  # stem
            nn.ReLU(),  # in place to save memory
            nn.Conv2d(8, 8, 3),
        )
    """
    assert only(dedent(before), diagnosis(inplace=(0, 3)), "inplace_kwarg") == dedent(after)


def test_inplace_flag_lands_at_construction_from_the_call_line() -> None:
    source = """
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.act = nn.ELU(inplace=True)

            def forward(self, x):
                return self.act(x) + self.act(x * 2)
    """
    fixes = [f for f in find_fixes(cells_of(source), diagnosis(saved_by=(0, 7)), verify=False)]
    flag = next(f for f in fixes if f["kind"] == "inplace_kwarg")
    assert "self.act = nn.ELU()" in flag["cells"]["0"]
    assert flag["edits"] == [
        {
            "cell": 0,
            "line": 4,
            "old": "        self.act = nn.ELU(inplace=True)",
            "new": "        self.act = nn.ELU()",
        }
    ]
    assert any("called at 2 places" in note for note in flag["notes"])


def test_inplace_flag_edit_in_another_cell_via_defined_at() -> None:
    cells = cells_of("relu = nn.ReLU(inplace=True)\n", "y = relu(x)\ny += 1\n")
    diag = diagnosis(inplace=(1, 2), saved_by=(1, 1))
    diag["saved_by"]["defined_at"] = {"cell": 0, "line": 1, "code": "relu = nn.ReLU(inplace=True)"}
    assert rewrites(cells, diag, "inplace_kwarg") == [{"0": "relu = nn.ReLU()\n"}]


def test_already_out_of_place_gives_no_flag_fix() -> None:
    assert (
        rewrites(
            cells_of("act = nn.ReLU()\nact2 = nn.ReLU(inplace=False)\n"),
            diagnosis(inplace=(0, 1)),
            "inplace_kwarg",
        )
        == []
    )


# --------------------------------------------------------------------------------- augmented_assign

_OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "@", "<<", ">>", "&", "|", "^"]


@pytest.mark.parametrize("op", _OPERATORS)
def test_augmented_assign_every_operator(op: str) -> None:
    assert only(f"x {op}= y\n", diagnosis(inplace=(0, 1)), "augmented_assign") == f"x = x {op} y\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("x /= torch.linalg.norm(x) + eps", "x = x / (torch.linalg.norm(x) + eps)"),
        ("self.h *= mask  # keep", "self.h = self.h * mask  # keep"),
        ("out -= (a + b)", "out = out - (a + b)"),
        ("x += -y", "x = x + (-y)"),
    ],
)
def test_augmented_assign_keeps_precedence_and_comments(before: str, after: str) -> None:
    assert only(before + "\n", diagnosis(inplace=(0, 1)), "augmented_assign") == after + "\n"


def test_subscript_augmented_assign_is_cloned_not_rewritten() -> None:
    cells = cells_of("y = x.sigmoid()\ny[:, 0] += 1\n")
    assert rewrites(cells, diagnosis(inplace=(0, 2)), "augmented_assign") == []
    assert rewrites(cells, diagnosis(inplace=(0, 2)), "clone_before") == [
        {"0": "y = x.sigmoid()\ny = y.clone()\ny[:, 0] += 1\n"}
    ]


# ----------------------------------------------------------------------------------- inplace_method


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("x.add_(y)", "x = x.add(y)"),
        ("x.add_(y, alpha=2)  # scaled", "x = x.add(y, alpha=2)  # scaled"),
        ("y = x.relu_()", "y = x.relu()"),
        ("attn.masked_fill_(torch.isnan(attn), 0.0)", "attn = attn.masked_fill(torch.isnan(attn), 0.0)"),
        ("return f(a, b.clamp_(-20, 2))", "return f(a, b.clamp(-20, 2))"),
        ("torch.relu_(x)", "x = torch.relu(x)"),
        ("x = F.relu_(x)", "x = F.relu(x)"),
        ("h.detach_()", "h = h.detach()"),
        ("self.h.sigmoid_()", "self.h = self.h.sigmoid()"),
        ("x.unsqueeze_(0)", "x = x.unsqueeze(0)"),
        ("x.zero_()", "x = torch.zeros_like(x)"),
        ("x.fill_(1.0)", "x = torch.full_like(x, 1.0)"),
    ],
)
def test_inplace_method_out_of_place(before: str, after: str) -> None:
    source = f"def f(x, y, a, b, h, attn):\n    {before}\n"
    expected = f"def f(x, y, a, b, h, attn):\n    {after}\n"
    assert only(source, diagnosis(inplace=(0, 2)), "inplace_method") == expected


def test_inplace_method_never_rebinds_a_loop_variable() -> None:
    source = "for p in model.parameters():\n    p.add_(p.grad, alpha=-lr)\n"
    assert rewrites(cells_of(source), diagnosis(inplace=(0, 2)), "inplace_method") == []


def test_requires_grad_is_not_an_inplace_write() -> None:
    assert rewrites(cells_of("w.requires_grad_()\n"), diagnosis(inplace=(0, 1)), "inplace_method") == []


# -------------------------------------------------------------------------- clone_before and friends


def test_clone_before_index_assignment_inside_a_block() -> None:
    before = """
        gates = torch.sigmoid(logits)
        if shared:
            # force the shared expert on
            gates[:, 0] = 1.0
    """
    after = """
        gates = torch.sigmoid(logits)
        if shared:
            # force the shared expert on
            gates = gates.clone()
            gates[:, 0] = 1.0
    """
    assert only(dedent(before), diagnosis(inplace=(0, 4), saved_by=(0, 1)), "clone_before") == dedent(after)


def test_view_clone_for_a_multi_output_view() -> None:
    before = """
        mean, log_std = net(s).chunk(2, dim=-1)
        log_std.clamp_(-20, 2)
    """
    after = """
        mean, log_std = net(s).chunk(2, dim=-1)
        log_std = log_std.clone()
        log_std.clamp_(-20, 2)
    """
    assert only(dedent(before), diagnosis("view_inplace", inplace=(0, 2)), "view_clone") == dedent(after)


def test_alias_clone() -> None:
    before = """
        h = torch.sigmoid(z)
        r = h
        r += 1
    """
    after = """
        h = torch.sigmoid(z)
        r = h.clone()
        r += 1
    """
    assert only(dedent(before), diagnosis(inplace=(0, 3), saved_by=(0, 1)), "alias_clone") == dedent(after)


def test_clone_the_inputs_a_custom_function_saves() -> None:
    before = """
        class Warp(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, flow):
                ctx.save_for_backward(x, flow)
                return x * flow
    """
    got = only(dedent(before), diagnosis(saved_by=(0, 4)), "clone_before")
    assert "ctx.save_for_backward(x.clone(), flow.clone())" in got


# ------------------------------------------------------------------------------------------ no_grad


def test_no_grad_wraps_the_loop_that_only_updates() -> None:
    before = """
        loss.backward()
        for p in model.parameters():
            p.add_(p.grad, alpha=-lr)
        print(loss.item())
    """
    after = """
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        print(loss.item())
    """
    source = "import torch\n" + dedent(before)
    assert only(source, diagnosis("leaf_inplace", inplace=(0, 4)), "no_grad") == "import torch\n" + dedent(
        after
    )


def test_no_grad_wraps_one_statement_and_adds_the_import() -> None:
    before = """
        for step in range(5):
            loss(w).backward()
            w -= lr * w.grad
            w.grad.zero_()
    """
    after = """
        import torch

        for step in range(5):
            loss(w).backward()
            with torch.no_grad():
                w -= lr * w.grad
            w.grad.zero_()
    """
    assert only(dedent(before), diagnosis("leaf_inplace", inplace=(0, 3)), "no_grad") == dedent(after)


def test_leaf_errors_get_no_out_of_place_rewrite() -> None:
    fixes = find_fixes(
        cells_of("w -= lr * w.grad\n"), diagnosis("leaf_inplace", inplace=(0, 1)), verify=False
    )
    assert [f["kind"] for f in fixes] == ["no_grad"]


def test_update_already_under_no_grad_is_left_alone() -> None:
    source = "with torch.no_grad():\n    w -= lr * w.grad\n"
    assert rewrites(cells_of(source), diagnosis("leaf_inplace", inplace=(0, 2)), "no_grad") == []


# ------------------------------------------------------------------------------------- reorder_step

_GAN = """
    for step in range(3):
        fake = G(z)
        p_real = D(real)
        p_fake = D(fake)
        d_loss = -(p_real.log() + (1 - p_fake).log()).mean()
        g_loss = (1 - p_fake).log().mean()

        opt_D.zero_grad()
        d_loss.backward(retain_graph=True)
        opt_D.step()

        opt_G.zero_grad()
        g_loss.backward()
        opt_G.step()
"""


def test_reorder_step_recomputes_the_late_loss_after_the_step() -> None:
    diag = diagnosis(inplace=(0, 10), saved_by=(0, 4), optimizer_step=True)
    recompute, move = rewrites(cells_of(_GAN), diag, "reorder_step")
    assert recompute["0"] == dedent(
        """
        for step in range(3):
            fake = G(z)
            p_real = D(real)
            p_fake = D(fake)
            d_loss = -(p_real.log() + (1 - p_fake).log()).mean()

            opt_D.zero_grad()
            d_loss.backward(retain_graph=True)
            opt_D.step()
            p_fake = D(fake)
            g_loss = (1 - p_fake).log().mean()

            opt_G.zero_grad()
            g_loss.backward()
            opt_G.step()
        """
    )
    assert move["0"].split("\n")[9:14] == [
        "",
        "    opt_G.zero_grad()",
        "    g_loss.backward()",
        "    opt_D.step()",
        "    opt_G.step()",
    ]


def test_reorder_step_is_labelled_as_changing_semantics() -> None:
    diag = diagnosis(inplace=(0, 10), saved_by=(0, 4), optimizer_step=True)
    fixes = [f for f in find_fixes(cells_of(_GAN), diag, verify=False) if f["kind"] == "reorder_step"]
    assert fixes and all(f["changes_semantics"] for f in fixes)


# -------------------------------------------------------------------------- other: carried state


def test_detach_carried_state_and_drop_retain_graph() -> None:
    before = """
        state = None
        for x, y in batches:
            logits, state = model(x, state)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward(retain_graph=True)
            optimizer.step()
    """
    after = """
        state = None
        for x, y in batches:
            if state is not None:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            logits, state = model(x, state)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    """
    diag = diagnosis(inplace=(0, 7), saved_by=(0, 3), optimizer_step=True)
    found = rewrites(cells_of(before), diag, "other")
    assert found[0]["0"] == dedent(after)
    assert "retain_graph=True" in found[1]["0"]


# ----------------------------------------------------------------------------------- allow_mutation


def test_allow_mutation_wraps_the_failing_cell_after_its_imports() -> None:
    cells = cells_of("y = x.exp()\n", "import math\n\nout = model(x)\nout += 1\nout.sum().backward()\n")
    diag = diagnosis(inplace=(1, 4), saved_by=(0, 1), error={"cell": 1, "line": 5})
    (got,) = rewrites(cells, diag, "allow_mutation")
    assert got["1"] == dedent(
        """
        import math
        import torch

        with torch.autograd.graph.allow_mutation_on_saved_tensors():
            out = model(x)
            out += 1
            out.sum().backward()
        """
    )


# ----------------------------------------------------------------------------------------- contract


def test_ipython_lines_survive_a_rewrite() -> None:
    source = "%matplotlib inline\nx += y\n!nvidia-smi\n"
    assert (
        only(source, diagnosis(inplace=(0, 2)), "augmented_assign")
        == "%matplotlib inline\nx = x + y\n!nvidia-smi\n"
    )


def test_markdown_and_unparsable_cells_are_skipped() -> None:
    cells = [Cell(0, "# Title\nx += 1", "markdown"), Cell(1, "x +=\n"), Cell(2, "x += 1\n")]
    diag = diagnosis(inplace=(2, 1))
    assert rewrites(cells, diag, "augmented_assign") == [{"2": "x = x + 1\n"}]
    for site in [(0, 2), (1, 1)]:
        # Only the fallback, which wraps the last code cell, is left when the site cannot be read.
        fixes = find_fixes(cells, diagnosis(inplace=site), verify=False)
        assert [(f["kind"], list(f["cells"])) for f in fixes] == [("allow_mutation", ["2"])]


@pytest.mark.parametrize(
    "diag",
    [
        {},
        {"inplace": None, "saved_by": None},
        {"inplace": "cell 0"},
        {"inplace": {"cell": "0", "line": "1"}},
        {"inplace": {"cell": 0, "line": 0}},
        {"inplace": {"cell": 9, "line": 1}},
        {"inplace": {"file": "/nowhere.py", "line": 3}},
        {"kind": 3, "inplace": {"cell": 0, "line": 1}, "skip": [], "also_written_by": "x"},
    ],
)
def test_bad_diagnosis_gives_no_fix_and_no_exception(diag: dict[str, Any]) -> None:
    fixes = find_fixes(cells_of("x += 1\n"), diag, verify=False)
    assert all(list(f["cells"]) == ["0"] for f in fixes)


@pytest.mark.parametrize("cells", [None, "x += 1", [None], [Cell(0, "x += 1")] * 2, []])
def test_bad_cells_give_an_empty_list(cells: Any) -> None:
    assert find_fixes(cells, diagnosis(inplace=(0, 1)), verify=False) in (
        [],
        find_fixes(cells, {}, verify=False),
    )


def test_edits_name_cell_line_old_and_new() -> None:
    fixes = find_fixes(cells_of("a = 1\nx += y\n"), diagnosis(inplace=(0, 2)), verify=False)
    fix = next(f for f in fixes if f["kind"] == "augmented_assign")
    assert fix["edits"] == [{"cell": 0, "line": 2, "old": "x += y", "new": "x = x + y"}]
    assert fix["verified"] is False and fix["preserves_gradients"] is None
