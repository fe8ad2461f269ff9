"""The family's texts, old and new (record/family.py): one test per wording, real torch for the
wordings of the installed version, and the errors that look close but must pass through."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from inplace_magic.pipeline.core import check_cells
from inplace_magic.record.family import FAMILY, Member, Wording, classify, confirmable, member_of
from inplace_magic.replay.cells import split_percent

WORDINGS = [(member, wording) for member in FAMILY for wording in member.wordings]


@pytest.mark.parametrize(
    ("member", "wording"), WORDINGS, ids=[f"{m.id}:{w.seen.split(' (')[0]}" for m, w in WORDINGS]
)
def test_each_wording_belongs_to_its_member(member: Member, wording: Wording) -> None:
    error = RuntimeError(wording.text)
    found = member_of(error, confirmable=True)
    assert found is not None and found.id == member.id
    if member.confirmed_by_replay:  # the text alone never makes it ours
        assert classify(error) is None and confirmable(error) is member
    else:
        assert classify(error) == member.kind and confirmable(error) is None


def test_old_and_new_node_names_are_both_recognised() -> None:
    texts = [w.text for w in FAMILY[0].wordings]
    assert any("output 0 of Relu," in t for t in texts) and any("ReluBackward0" in t for t in texts)
    assert any("the backtrace further above" in t for t in texts)  # the hint under anomaly mode


def test_the_version_check_on_gradient_tensors_of_pr_185286_is_in_the_table() -> None:
    gradient = next(m for m in FAMILY if m.id == "gradient_modified")
    assert any("#185286" in w.seen for w in gradient.wordings)
    # a stale *saved* tensor is still the first member, not the gradient check
    assert member_of(RuntimeError(FAMILY[0].wordings[0].text)) is FAMILY[0]


PASS_THROUGH = [
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.",
    "The size of tensor a (64) must match the size of tensor b (32) at non-singleton dimension 1",
    "unsupported operation: more than one element of the written-to tensor refers to a single memory "
    "location. Please clone() the tensor before performing the operation.",
    "unsupported operation: some elements of the input tensor and the written-to tensor refer to a "
    "single memory location. Please clone() the tensor before performing the operation.",
    "element 0 of tensors does not require grad and does not have a grad_fn",
    "output with shape [4] doesn't match the broadcast shape [3, 4]",
]


@pytest.mark.parametrize("text", PASS_THROUGH, ids=lambda t: t[:40])
def test_errors_that_look_close_are_not_ours(text: str) -> None:
    assert member_of(RuntimeError(text), confirmable=True) is None


def test_our_text_in_another_exception_type_is_not_ours() -> None:
    assert classify(ValueError(FAMILY[0].wordings[0].text)) is None


# -- the installed torch raises each current wording, and the family recognises it


def _saved_modified() -> None:
    y = torch.relu(torch.randn(3, requires_grad=True) * 2)
    y.add_(1)
    y.sum().backward()


def _leaf() -> None:
    torch.randn(3, requires_grad=True).add_(1)


def _multi_output() -> None:
    _, b = (torch.randn(4, requires_grad=True) * 1).split(2)
    b.mul_(2)


def _hook_view() -> None:
    lin = torch.nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: None)
    lin(torch.randn(1, 2)).add_(1)


def _no_grad_view() -> None:
    x = torch.randn(4, requires_grad=True) * 1
    with torch.no_grad():
        v = x[:2]
    v.mul_(2)


def _inference_view() -> None:
    x = torch.randn(4, requires_grad=True).clone()
    with torch.inference_mode():
        v = x.view(-1)
    v.mul_(2)


def _detach_view() -> None:
    (torch.randn(4, requires_grad=True) * 1)[:2].detach_()


def _negative_slope() -> None:
    F.leaky_relu(torch.randn(3, requires_grad=True) * 1, -0.1, inplace=True).sum().backward()


def _elu_negative_alpha() -> None:
    F.elu(torch.randn(3, requires_grad=True) * 1, alpha=-0.5, inplace=True).sum().backward()


def _out_argument() -> None:
    torch.exp(torch.randn(3, requires_grad=True), out=torch.empty(3))


def _pack_hook() -> None:
    def pack(t: torch.Tensor) -> torch.Tensor:
        return t.mul_(2)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        (torch.randn(3, requires_grad=True) * 1).exp()


def _functorch() -> None:
    captured = torch.zeros(3)

    def f(x: torch.Tensor) -> torch.Tensor:
        captured.add_(x)
        return x.sum()

    torch.func.grad(f)(torch.randn(3))


RAISERS: dict[str, Callable[[], None]] = {
    "saved_tensor_modified": _saved_modified,
    "leaf_written": _leaf,
    "view_multi_output": _multi_output,
    "view_custom_function": _hook_view,
    "view_no_grad": _no_grad_view,
    "view_inference": _inference_view,
    "detach_view": _detach_view,
    "negative_slope": _negative_slope,
    "out_argument": _out_argument,
    "pack_hook_write": _pack_hook,
    "functorch_captured": _functorch,
}


@pytest.mark.parametrize("expected", [*RAISERS, "negative_slope:elu"])
def test_the_installed_torch_raises_a_text_of_its_member(expected: str) -> None:
    raise_it = _elu_negative_alpha if expected == "negative_slope:elu" else RAISERS[expected]
    with pytest.raises(RuntimeError) as caught:
        raise_it()
    found = member_of(caught.value)
    assert found is not None and found.id == expected.split(":")[0], str(caught.value)


def test_a_gradient_written_in_place_by_a_hook_is_located_with_the_proposed_message() -> None:
    """torch 2.13 has no version check on gradients: the hook on ``w`` raises the text PR #185286
    proposes, at the point of the backward where the engine's check would raise it."""
    proposed = next(m for m in FAMILY if m.id == "gradient_modified").wordings[0].text
    source = textwrap.dedent(
        f"""
        import torch
        w = torch.randn(3, requires_grad=True)
        y = (w * 2).exp()
        y.register_hook(lambda g: g.mul_(2))
        w.register_hook(lambda g: (_ for _ in ()).throw(RuntimeError({proposed!r})))
        (y * y).sum().backward()
        """
    ).lstrip("\n")
    result = check_cells(split_percent(source), with_fixes=False)
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.member == "gradient_modified"
    assert diagnosis.inplace is not None and diagnosis.inplace.location is not None
    assert (diagnosis.inplace.location.cell, diagnosis.inplace.location.line) == (0, 4)
    assert diagnosis.inplace.op == "aten.mul_.Tensor"
    assert diagnosis.limits, "what the engine cannot know is said"


def test_unused_input_text_is_ours_only_when_the_replay_shows_set_() -> None:
    unused = check_cells(
        split_percent(
            "import torch\nw = torch.randn(3, requires_grad=True)\nb = torch.randn(3, requires_grad=True)\n"
            "torch.autograd.grad((w * 2).sum(), [w, b])\n"
        ),
        with_fixes=False,
    )
    assert unused.status == "other_error" and unused.diagnosis is None
    swapped = check_cells(
        split_percent(
            "import torch\nw = torch.randn(3, requires_grad=True)\nloss = (w * 2).sum()\n"
            "with torch.no_grad():\n    w.set_(torch.randn(3))\ntorch.autograd.grad(loss, w)\n"
        ),
        with_fixes=False,
    )
    assert swapped.diagnosis is not None and swapped.diagnosis.member == "unused_after_set"
    assert swapped.diagnosis.inplace is not None and swapped.diagnosis.inplace.location is not None
    assert swapped.diagnosis.inplace.location.line == 5
