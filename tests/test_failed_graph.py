"""What the failed run's own graph says of its stale saved tensor (record/failed_graph.py), and the
kernel's replay that stops on it: the same diagnosis as a recording of everything, with less run."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output
from step_errors import runtime_error_of

from inplace_magic.pipeline import core, kernel
from inplace_magic.record.failed_graph import stale_in_failed_run
from inplace_magic.record.first_pass import FirstPass
from inplace_magic.record.recorder import Recorder


class Block(torch.nn.Module):
    """A pre-activation block: the shortcut saves ``h``, then an in-place ReLU writes it."""

    def __init__(self, buggy: bool) -> None:
        super().__init__()
        self.shortcut = torch.nn.Conv2d(3, 3, 1)
        self.act = torch.nn.ReLU(inplace=buggy)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(h)
        return self.conv(self.act(h)) + s


def _failing(*buggy: bool) -> Callable[[], None]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[Block(b) for b in buggy])
    x = torch.randn(1, 3, 4, 4)
    return lambda: model(x.clone()).sum().backward()  # a fresh input each run: the first block writes it


def _first_pass(step: Callable[[], None]) -> Any:
    first = FirstPass()
    with first:
        runtime_error_of(step)
    return first.finding


def test_one_stale_tensor_is_read_from_the_graph_as_the_first_pass_finds_it() -> None:
    step = _failing(False, True, False)
    error = runtime_error_of(step)
    assert error is not None
    found = stale_in_failed_run(error)
    first = _first_pass(step)
    assert found is not None and first is not None
    assert found.index == -1 and found.fitting == 1
    seen = (found.shape, found.dtype, found.saved_version, found.current_version, found.node_name)
    assert seen == (first.shape, first.dtype, first.saved_version, first.current_version, first.node_name)


def test_one_bug_in_several_blocks_counts_each_memory_that_fits() -> None:
    error = runtime_error_of(_failing(True, True, True))
    assert error is not None
    found = stale_in_failed_run(error)
    assert found is not None and found.fitting == 3 and found.node_name == "ConvolutionBackward0"


def test_no_finding_without_the_backward_frame_a_custom_function_or_where_unpacking_runs_hooks() -> None:
    error = runtime_error_of(_failing(True))
    assert error is not None
    traceback.clear_frames(error.__traceback__)
    assert stale_in_failed_run(error) is None  # the graph went with the frames

    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return grad * 2 + x * 0

    w = torch.randn(3, requires_grad=True)

    def custom() -> None:
        y = torch.sigmoid(w)
        z = Double.apply(y) * torch.sigmoid(w)
        y.mul_(2)
        z.sum().backward()

    error = runtime_error_of(custom)
    assert error is not None and "modified by an inplace operation" in str(error)
    assert stale_in_failed_run(error) is None

    unpacked: list[torch.Tensor] = []

    def unpack(t: torch.Tensor) -> torch.Tensor:
        unpacked.append(t)
        return t

    def hooked_below_the_stale_one() -> None:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, unpack):
            a = w * torch.ones(3)  # saves both under the hooks: backward reaches it last
        y = torch.sigmoid(a)
        out = y * 3
        y.mul_(2)
        out.sum().backward()

    error = runtime_error_of(hooked_below_the_stale_one)
    assert error is not None and "modified by an inplace operation" in str(error)
    unpacked.clear()
    assert stale_in_failed_run(error) is None and unpacked == []  # no hook of the user's ran


def test_an_error_that_is_not_a_stale_saved_tensor_has_no_finding() -> None:
    leaf = torch.randn(3, requires_grad=True)
    error = runtime_error_of(lambda: leaf.add_(1))
    assert error is not None and stale_in_failed_run(error) is None


def test_the_recording_follows_the_memory_saved_last_and_stops_after_its_block() -> None:
    step = _failing(True, True, True)
    error = runtime_error_of(step)
    assert error is not None
    found, first = stale_in_failed_run(error), _first_pass(step)
    assert found is not None and first is not None
    followed = Recorder(calls=False, backward_ops=False, stop=found)
    with followed:
        runtime_error_of(step)
    indexed = Recorder(calls=False, backward_ops=False, stop=first)
    with indexed:
        runtime_error_of(step)
    assert followed.stopped_early and indexed.stopped_early
    a, b = followed.trace.stale, indexed.trace.stale
    assert a is not None and b is not None
    assert (a.save.rid, a.current_version, a.node_name) == (b.save.rid, b.current_version, b.node_name)
    assert len(followed.trace.ops) == len(indexed.trace.ops)


SETUP = """
import torch
torch.manual_seed(0)
class Block(torch.nn.Module):
    def __init__(self, buggy):
        super().__init__()
        self.shortcut = torch.nn.Conv2d(3, 3, 1)
        self.act = torch.nn.ReLU(inplace=buggy)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, h):
        s = self.shortcut(h)
        return self.conv(self.act(h)) + s

# a stem first: a first block's in-place ReLU would write the user's x, which the failed run left
# at another version than the replay's blocks see
model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), Block(True), Block(False), Block(True), Block(False))
x = torch.randn(1, 3, 4, 4)
"""

STEP = "model.zero_grad(set_to_none=True)\nmodel(x).sum().backward()\n"


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")  # the shell is the process's: other modules' names go
    shell.run_cell(SETUP)
    yield shell
    shell.run_line_magic("unload_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")


def _diagnosed(ip: Any) -> dict[str, Any]:
    with capture_output():
        result = ip.run_cell("%%gradcheck --no-fix\n" + STEP)
    assert "modified by an inplace operation" in str(result.error_in_exec)
    found = kernel.latest()
    assert found is not None
    return found


def test_the_kernel_stops_on_the_graphs_finding_with_the_diagnosis_of_a_full_recording(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stops: list[bool] = []
    stop_now = Recorder._stop_now

    def spied(self: Recorder, stale: Any = None) -> None:
        stops.append(True)
        stop_now(self, stale)

    monkeypatch.setattr(Recorder, "_stop_now", spied)
    weights = [p.detach().clone() for p in ip.user_ns["model"].parameters()]
    followed = _diagnosed(ip)
    assert stops
    assert all(torch.equal(a, b) for a, b in zip(weights, ip.user_ns["model"].parameters(), strict=True))
    stops.clear()
    monkeypatch.setattr(core, "stale_in_failed_run", lambda error: None)
    recorded = _diagnosed(ip)
    assert not stops  # no first pass in the kernel: everything recorded
    assert followed["executions"] == recorded["executions"]  # the finding runs nothing more
    for key in ("inplace", "saved_by", "skip", "tensor", "headline"):
        assert followed[key] == recorded[key], key
    assert followed["inplace"]["module"] == "3.act"  # the last block with the bug: backward read it first


DEEP_GRAPH = """
import torch
from inplace_magic.record.failed_graph import stale_in_failed_run
from inplace_magic.record.lifted_backward import accumulated_into
from inplace_magic.record.torch_facts import GRAPH_WALK_LIMIT

def chain():
    h = torch.randn(4, requires_grad=True)
    for _ in range(6 * GRAPH_WALK_LIMIT):
        h = h * 1.0001
    return torch.sigmoid(h)

s = chain()
assert accumulated_into((s.sum(),), None) is None  # the walk gave up: backward keeps the mode
del s  # the graph goes: with a wrapper on every node of the chain, a segmentation fault

s = chain()
loss = s.sum()
s.mul_(2)
try:
    loss.backward()
except RuntimeError as error:
    assert stale_in_failed_run(error) is None  # the walk gave up: the replay records everything
    del error
del s, loss
print("freed")
"""


def test_a_walk_gives_up_on_a_chain_whose_wrappers_would_crash_its_teardown() -> None:
    # a child process: the failure this guards against is a segmentation fault when the graph goes
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", DEEP_GRAPH], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "freed", (done.returncode, done.stderr[-2000:])


def test_a_bug_in_reading_the_graph_is_said_to_be_ours_and_the_replay_still_diagnoses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inplace_magic.pipeline.internal import ENV
    from inplace_magic.replay.cells import Cell

    def broken(error: BaseException) -> None:
        raise ValueError("a bug of ours")

    monkeypatch.delenv(ENV, raising=False)  # reported, not raised: what a user's check does
    monkeypatch.setattr(core, "stale_in_failed_run", broken)
    failing = (
        "import torch\nx = torch.randn(3, requires_grad=True)\ny = x.sigmoid()\ny += 1\ny.sum().backward()\n"
    )
    result = core.check_cells([Cell(0, failing)], with_fixes=False)
    assert result.diagnosis is not None and result.diagnosis.inplace is not None
    assert result.diagnosis.inplace.op == "aten.add_.Tensor"
    assert result.internal_errors == ["reading the failed run's graph: ValueError: a bug of ours"]


def test_through_the_magic_a_bug_in_reading_the_graph_is_noted_and_the_diagnosis_stays_whole(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inplace_magic.pipeline.internal import ENV

    def broken(error: BaseException) -> None:
        raise ValueError("a bug of ours")

    monkeypatch.delenv(ENV, raising=False)  # reported, not raised: what a user's session does
    whole = _diagnosed(ip)
    monkeypatch.setattr(core, "stale_in_failed_run", broken)
    noted = _diagnosed(ip)
    ours = [note for note in noted["notes"] if "a bug of ours" in note]
    assert len(ours) == 1 and "reading the failed run's graph (ValueError: a bug of ours)" in ours[0]
    for key in ("inplace", "saved_by", "skip", "tensor", "headline"):
        assert noted[key] == whole[key], key  # found by the recording alone, as without the graph


def test_a_diagnosis_leaves_no_cycle_behind_its_recorder_and_replay_errors_are_let_go(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the replay's error held its frames, which held it; the recorder and its dispatch mode held
    # each other: both kept the trace and the replay's tensors until a garbage collection
    import gc
    import weakref

    recorders: list[weakref.ref[Any]] = []
    errors: list[weakref.ref[BaseException]] = []
    recorder_for = core.recorder_for

    def watched(*args: Any, **kwargs: Any) -> Any:
        recorder = recorder_for(*args, **kwargs)
        recorders.append(weakref.ref(recorder))
        return recorder

    released = core._released

    def seen(raised: list[BaseException], original: BaseException) -> None:
        errors.extend(weakref.ref(error) for error in raised)
        released(raised, original)

    monkeypatch.setattr(core, "recorder_for", watched)
    monkeypatch.setattr(core, "_released", seen)
    gc.collect()
    gc.disable()
    try:
        _diagnosed(ip)
        assert recorders and errors  # a replay stopped by the recorder: ReplayStopped
        assert all(ref() is None for ref in recorders + errors), "held in a reference cycle"
    finally:
        gc.enable()
