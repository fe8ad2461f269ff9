"""Backward without the dispatch mode under the kernel's undo log (inplace_magic/record/lifted_backward.py).

Where the graph holds only autograd's own C++ nodes, backward runs with the mode off and the undo
log is shown, before it runs, each existing ``.grad`` it will add into. Python that backward would
run and the walk of the graph cannot see (a hook on a node) is stopped before its first line, and
the replay is run again with the mode on; what the walk does see (a custom Function, a leaf's own
hooks), and a tracer already set, keep the mode on from the start. Each case checks the memory the
undo log must put back, and whether backward's ops reached it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import shells
import torch

import inplace_magic
from inplace_magic.pipeline import core
from inplace_magic.pipeline import kernel as cellreplay
from inplace_magic.record.lifted_backward import BackwardRanPython, _refusing
from inplace_magic.record.recorder import Recorder
from inplace_magic.replay.undo import WriteLog


class _CountingLog(WriteLog):
    """The undo log, counting the ops it is shown while a backward call runs (with the mode on, the
    lean recorder shows it backward's writes only)."""

    def __init__(self) -> None:
        super().__init__()
        self.backward_ops = 0

    def before(self, info: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if torch._C._current_graph_task_id() != -1:
            self.backward_ops += 1
        super().before(info, args, kwargs)


def _lean(log: WriteLog) -> Recorder:
    return Recorder(calls=False, backward_ops=False, undo=log)  # the kernel's, for a stale saved tensor


def test_plain_autograd_runs_without_the_mode_and_existing_grads_are_still_restored() -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    (weight * 2).sum().backward()
    grad = weight.grad
    assert grad is not None
    before, version = grad.clone(), grad._version
    log = _CountingLog()
    with _lean(log) as recorder:
        (weight * 3).sin().sum().backward()  # adds into the existing .grad, in place
    assert log.backward_ops == 0 and not recorder.backward_ran_python
    assert weight.grad is grad and not torch.equal(grad, before)
    log.restore()
    assert torch.equal(grad, before) and grad._version == version


def test_a_hook_on_a_node_is_stopped_before_it_runs_and_the_recorder_says_so() -> None:
    calls = torch.zeros(1)
    log = _CountingLog()
    with _lean(log) as recorder, pytest.raises(BackwardRanPython):
        x = torch.ones(3, requires_grad=True)
        y = (x * 2).sin()
        y.grad_fn.register_prehook(lambda grad_outputs: calls.add_(1))  # no walk of the graph sees it
        y.sum().backward()
    assert recorder.backward_ran_python and calls.item() == 0  # the hook never ran unseen
    log.restore()


def _writing_function(written: torch.Tensor) -> type[torch.autograd.Function]:
    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            written.add_(1)  # older memory, written by Python backward runs
            return grad * 2

    return Scale


def test_a_custom_function_keeps_the_mode_on_and_its_writes_are_undone() -> None:
    written = torch.zeros(2)
    scale = _writing_function(written)
    log = _CountingLog()
    with _lean(log) as recorder:
        scale.apply(torch.ones(3, requires_grad=True)).sum().backward()
    assert log.backward_ops > 0 and not recorder.backward_ran_python
    assert written.tolist() == [1.0, 1.0]
    log.restore()
    assert written.tolist() == [0.0, 0.0] and written._version == 0


@pytest.mark.parametrize("hook", ["register_hook", "register_post_accumulate_grad_hook"])
def test_a_leafs_own_hooks_keep_the_mode_on(hook: str) -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    written = torch.zeros(1)
    getattr(weight, hook)(lambda t: written.add_(1) and None)
    log = _CountingLog()
    with _lean(log):
        (weight * 2).sum().backward()
    assert log.backward_ops > 0 and written.item() == 1
    log.restore()
    assert written.item() == 0


def test_a_tracer_already_set_keeps_the_mode_on_and_stays_set() -> None:
    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    weight = torch.nn.Parameter(torch.ones(3))
    (weight * 2).sum().backward()  # an existing .grad: with the mode on, the log sees the add into it
    log = _CountingLog()
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with _lean(log):
            (weight * 2).sum().backward()
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
    assert log.backward_ops > 0
    log.restore()
    assert weight.grad is not None and weight.grad.tolist() == [2.0, 2.0, 2.0]


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    yield from shells.with_the_extension()  # tests/shells.py


NODE_HOOK_CELL = (
    "%%gradcheck --no-fix\n"
    "w = torch.ones(3, requires_grad=True)\n"
    "y = (w * 2).sigmoid()\n"
    "y.grad_fn.register_prehook(count)\n"
    "y.mul_(2)\n"
    "y.sum().backward()\n"
)


def _node_hook_diagnosis(ip: Any) -> tuple[Any, dict[str, Any]]:
    """NODE_HOOK_CELL's failed run and diagnosis in a reset shell: the run's error and the diagnosis,
    once its writer and saver are checked and no replay's hook call is left in ``calls``."""
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    ip.run_cell(
        "import torch\ncalls = torch.zeros(1)\ndef count(grad_outputs):\n    calls.add_(1)",
        store_history=True,
    )
    result = ip.run_cell(NODE_HOOK_CELL, store_history=True)
    assert isinstance(result.error_in_exec, RuntimeError)
    # the failed run's pre-hook ran once before sigmoid's backward raised; no replay's remains
    assert ip.user_ns["calls"].item() == 1 and ip.user_ns["calls"]._version == 1
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["reproduced"]
    sites = diagnosis["inplace"]["op"], diagnosis["saved_by"]["op"]
    assert sites == ("aten.mul_.Tensor", "aten.sigmoid.default")
    return result.error_in_exec, diagnosis


def test_through_the_magic_a_node_hook_replays_again_with_the_mode_on_and_leaves_no_trace(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the failed run's graph says would stop the replay before backward (the next test):
    # without it the replay reaches backward, where the guard meets the hook
    monkeypatch.setattr(core, "stale_in_failed_run", lambda error: None)
    error, diagnosis = _node_hook_diagnosis(ip)
    assert diagnosis["executions"]["replay"] == 2  # the run stopped at the hook, and the one after it
    assert "re-executed twice" in str(getattr(error, "__notes__", ""))


def test_through_the_magic_the_failed_graphs_finding_stops_the_replay_before_the_hook(ip: Any) -> None:
    _, diagnosis = _node_hook_diagnosis(ip)
    assert diagnosis["executions"]["replay"] == 1  # stopped after the write: backward never ran


def test_a_python_signal_handler_may_run_in_backward_any_other_frame_is_refused() -> None:
    # the guard's trace function, called by hand from frames inside a real backward: the engine's
    # caller is the function that calls backward(); a Ctrl-C or time-limit handler running between
    # two nodes must not turn into a refusal (the user's interrupt would be lost to a second replay)
    refusals: list[int] = []
    verdicts: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        verdicts.append(_verdict(sys._getframe()))

    def _verdict(frame: Any) -> str:
        try:
            refuse(frame, "call", None)
        except BackwardRanPython:
            return "refused"
        return "allowed"

    def hook(grad: torch.Tensor) -> None:
        verdicts.append(_verdict(sys._getframe()))
        handler(signal.SIGUSR1, None)

    def run_backward() -> None:
        x = torch.ones(2, requires_grad=True)
        y = x * 2
        y.register_hook(hook)
        y.sum().backward()

    refuse = _refusing(run_backward.__code__, lambda: refusals.append(1))
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        run_backward()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert verdicts == ["refused", "allowed"] and refusals == [1]


def test_a_wider_replay_whose_earlier_cell_meets_the_guard_runs_again_and_is_not_discarded(ip: Any) -> None:
    # the graph comes from an earlier cell, whose backward runs a hook on a node: the guard voids
    # that run of the wider window (In[2] to In[3]); it is not an error of that earlier cell
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    counter = "import torch\ncalls = torch.zeros(1)\ndef count(grad_outputs):\n    calls.add_(1)"
    ip.run_cell(counter, store_history=True)
    forward = (
        "w = torch.ones(3, requires_grad=True)\n"
        "y = (w * 2).sigmoid()\n"
        "y.grad_fn.register_prehook(count)\n"
        "y.sum().backward(retain_graph=True)\n"
    )
    ip.run_cell(forward, store_history=True)
    result = ip.run_cell("%%gradcheck --no-fix\ny.mul_(2)\ny.sum().backward()\n", store_history=True)
    assert isinstance(result.error_in_exec, RuntimeError)
    assert ip.user_ns["calls"].item() == 2 and ip.user_ns["calls"]._version == 2  # the two plain runs'
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["reproduced"]
    sites = diagnosis["inplace"]["op"], diagnosis["saved_by"]["op"]
    assert sites == ("aten.mul_.Tensor", "aten.sigmoid.default")
    assert diagnosis["executions"]["replay"] == 3  # In[3]; In[2] to In[3] voided, and again


def test_a_tensor_hook_or_saved_tensor_hooks_in_the_replay_keep_the_mode_on_without_voiding_it() -> None:
    # what says Python will run in backward, seen in forward: no run for the guard to void
    weight = torch.nn.Parameter(torch.ones(3))
    (weight * 2).sum().backward()
    for noted in ("register_hook", "save_on_cpu"):
        log = _CountingLog()
        with _lean(log) as recorder:
            y = weight * 3
            if noted == "register_hook":
                y.register_hook(lambda g: None)
                y.sum().backward()
            else:
                with torch.autograd.graph.save_on_cpu():
                    z = y.sin()
                z.sum().backward()
        assert not recorder.backward_ran_python and log.backward_ops > 0, noted  # the add into .grad
        log.restore()
