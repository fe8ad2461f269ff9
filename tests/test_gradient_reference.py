"""The live verification's gradient reference (``fix/live/reference.py``) against torch's own
``allow_mutation_on_saved_tensors``, which the judge defines it by: the same gradients, bit for bit,
on code that writes saved tensors in place in each way the diagnoser meets (an in-place activation
on a skip connection, a saved output written, an index assignment, a foreach optimizer's step
between two backward calls, a tensor saved twice), run under the undo log as the verification runs
it, and nothing left behind once it is put back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from inplace_magic.fix.live.reference import SavedValuesKept
from inplace_magic.replay.undo import WriteLog

Grads = list[torch.Tensor]


def _skip_connection() -> Grads:
    conv, shortcut = torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Conv2d(3, 3, 1)
    h = torch.nn.Conv2d(2, 3, 1)(torch.randn(2, 2, 5, 5))
    s = shortcut(h)  # saves h ...
    out = conv(torch.relu_(h)) + s  # ... which the in-place activation writes
    out.pow(2).mean().backward()
    return [p.grad for p in (*conv.parameters(), *shortcut.parameters())]  # type: ignore[misc]


def _saved_output_written() -> Grads:
    x = torch.randn(6, requires_grad=True)
    y = torch.sigmoid(x)  # saves its output
    y += 1
    (y * 2).sum().backward()
    return [x.grad]  # type: ignore[list-item]


def _index_assignment() -> Grads:
    x = torch.randn(3, 4, requires_grad=True)
    y = torch.exp(x)
    y[:, 0] = 0
    y.sum().backward()
    return [x.grad]  # type: ignore[list-item]


def _foreach_step_between_backwards() -> Grads:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), foreach=True)
    out = model(torch.randn(4, 8))
    out.mean().backward(retain_graph=True)
    optimizer.step()  # writes the weights the graph saved
    out.sum().backward()
    return [p.grad for p in model.parameters()]  # type: ignore[misc]


def _saved_twice() -> Grads:
    x = torch.randn(5, requires_grad=True)
    h = x * 1.0
    a, b = h * h, h.sin()  # h saved three times at one version
    h.mul_(3)
    (a + b).sum().backward()
    return [x.grad]  # type: ignore[list-item]


def _double_backward() -> Grads:
    # a gradient penalty's second backward goes through the saved output's own node: the kept value
    # must still carry the graph (autograd puts it back on an unpacked tensor from its saved edge)
    x = torch.randn(6, requires_grad=True)
    y = torch.sigmoid(x)  # saves its output
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)  # its graph reads the saved output again
    y.mul_(2)
    (g.pow(2).sum() + y.sum()).backward()
    return [x.grad]  # type: ignore[list-item]


SNIPPETS: dict[str, Callable[[], Grads]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _skip_connection,
        _saved_output_written,
        _index_assignment,
        _foreach_step_between_backwards,
        _saved_twice,
        _double_backward,
    )
}


def _seeded(snippet: Callable[[], Grads]) -> Grads:
    torch.manual_seed(0)
    return [g.clone() for g in snippet()]


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_the_reference_gives_torchs_allow_mutation_gradients_bit_for_bit(name: str) -> None:
    snippet = SNIPPETS[name]
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        snippet()  # the error the reference must see past
    with torch.autograd.graph.allow_mutation_on_saved_tensors():
        expected = _seeded(snippet)
    log = WriteLog()
    with SavedValuesKept().kept_under(log), log:
        got = _seeded(snippet)
    log.restore()
    assert len(got) == len(expected)
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def test_the_undo_log_stops_reporting_writes_when_the_reference_ends() -> None:
    log = WriteLog()
    kept = SavedValuesKept()
    with kept.kept_under(log):
        assert log.before_each_write is not None
        with pytest.raises(RuntimeError, match="already reports"), SavedValuesKept().kept_under(log):
            pass
    assert log.before_each_write is None
    x = torch.randn(3, requires_grad=True)
    y = torch.sigmoid(x)
    with log:
        y.add_(1)  # outside the reference: the plain error again
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    log.restore()
