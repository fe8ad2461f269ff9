"""The two-pass replay of a stale saved tensor (issue 15): a first pass of saved-tensor hooks alone
finds the tensor, and the recorder then stops once its diagnosis has what it reads. Each test runs
real models under real torch and compares with the recording of the whole lean replay, which
is what the diagnosis read before."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from step_errors import runtime_error_of

from inplace_magic.diagnose.analysis import diagnose
from inplace_magic.diagnose.diagnosis import Diagnosis
from inplace_magic.diagnose.stale import skip_settled
from inplace_magic.pipeline import core
from inplace_magic.pipeline.core import FIRST_PASS_BELOW_S, PassTimes, check_cells, recorder_for, replay
from inplace_magic.record.first_pass import FirstPass
from inplace_magic.record.recorder import Recorder
from inplace_magic.replay.cells import Cell
from inplace_magic.replay.run import SourceMap
from inplace_magic.replay.undo import WriteLog


class PreAct(torch.nn.Module):
    """The skip connection merges inside the block that saves and writes: the replay stops there."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.shortcut = torch.nn.Conv2d(3, 3, 1)
        self.act = torch.nn.ReLU(inplace=True)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.seen = seen

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        self.seen.append("block")
        s = self.shortcut(h)  # saves h
        return self.conv(self.act(h)) + s  # act writes h; the branches merge at the add


def _blocks(seen: list[str], count: int) -> torch.nn.Module:
    """A stem (so that no block writes the input data itself), then blocks of which the first writes."""
    blocks = [PreAct(seen) for _ in range(count)]
    for block in blocks[1:]:
        block.act.inplace = False
    return torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), *blocks)


class Masked(torch.nn.Module):
    """Softmax saves its output and a mask read from it is written back: the two consumers of the
    saved value merge only in the caller, after this module returned."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = x.softmax(-1)
        attn.masked_fill_(torch.isnan(attn), 0.0)
        return attn * 2


class Caller(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pre, self.inner, self.lin = torch.nn.Linear(4, 4), Masked(), torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        y = h + self.inner(h)
        return y + self.lin(y)


def _failing(build: Any, data: torch.Tensor) -> tuple[Any, BaseException]:
    torch.manual_seed(0)
    model = build()

    def step() -> BaseException | None:
        return runtime_error_of(lambda: model(data).sum().backward())

    original = step()
    assert original is not None and "modified by an inplace operation" in str(original)
    return step, original


def _key(diagnosis: Diagnosis | None) -> Any:
    """The diagnosis as JSON, without the call stacks above the step (the tests' own callers)."""
    assert diagnosis is not None and diagnosis.inplace is not None and diagnosis.saved_by is not None
    return _without_stacks(json.loads(json.dumps(diagnosis.to_json(), default=str)))


def _without_stacks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_stacks(v) for k, v in value.items() if not k.endswith("stack")}
    if isinstance(value, list):
        return [_without_stacks(v) for v in value]
    return value


def _one_lean_recording(step: Any, original: BaseException) -> tuple[Diagnosis | None, Recorder]:
    lean = recorder_for(original)
    with lean:
        step()
    assert not lean.stopped_early
    return diagnose(lean.trace, original, SourceMap(), {}), lean


def test_the_first_pass_finds_the_save_the_recorder_finds_stale() -> None:
    seen: list[str] = []
    step, original = _failing(lambda: _blocks(seen, 2), torch.randn(1, 3, 4, 4))
    first = FirstPass()
    with first:
        step()
    _, lean = _one_lean_recording(step, original)
    finding, stale = first.finding, lean.trace.stale
    assert finding is not None and stale is not None and finding.plain
    assert finding.index == stale.save.rid and finding.node_name == stale.node_name
    assert (finding.saved_version, finding.current_version) == (
        stale.save.tensor.version,
        stale.current_version,
    )
    assert finding.shape == stale.save.tensor.shape


def test_the_recording_stops_when_the_block_that_saved_and_wrote_returns_with_the_same_diagnosis() -> None:
    seen: list[str] = []
    step, original = _failing(lambda: _blocks(seen, 3), torch.randn(1, 3, 4, 4))
    whole, _ = _one_lean_recording(step, original)
    seen.clear()
    runs: list[int] = []

    def rerun() -> BaseException | None:
        runs.append(len(seen))
        return step()

    times = PassTimes()
    diagnosis = replay(rerun, original, SourceMap(), dict, None, pass_times=times)
    assert _key(diagnosis) == _key(whole)
    assert diagnosis is not None and diagnosis.skip is not None and diagnosis.skip.merge_kind == "add"
    # the first pass ran all three blocks; the recording stopped when the first block returned
    assert runs == [0, 3] and len(seen) == 4
    assert times.first > 0 and times.record > 0 and times.again == 0


def test_a_merge_outside_the_block_keeps_the_recording_going_until_it_is_recorded() -> None:
    step, original = _failing(Caller, torch.randn(2, 4))
    whole, lean = _one_lean_recording(step, original)
    assert whole is not None and whole.skip is not None  # isnan and the write meet in the caller
    first = FirstPass()
    with first:
        step()
    stopping = recorder_for(original, stop=first.finding)
    with stopping:
        step()
    assert stopping.stopped_early and len(stopping.trace.ops) < len(lean.trace.ops)
    assert stopping.trace.stale is not None and skip_settled(stopping.trace, stopping.trace.stale)
    assert _key(diagnose(stopping.trace, original, SourceMap(), {})) == _key(whole)


def test_the_undo_log_sees_the_first_pass_and_puts_back_what_it_wrote() -> None:
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(4)
    before = bn.running_mean.clone(), int(bn.num_batches_tracked)

    def step() -> BaseException | None:
        y = bn(torch.randn(3, 4)).sigmoid()
        y.add_(1)
        return runtime_error_of(lambda: y.sum().backward())

    log = WriteLog()
    first = FirstPass(log)
    with first:
        assert step() is not None
    assert first.finding is not None and not log.watched
    assert int(bn.num_batches_tracked) == before[1] + 1
    log.restore()
    assert torch.equal(bn.running_mean, before[0]) and int(bn.num_batches_tracked) == before[1]


def test_a_first_pass_that_reaches_no_stale_tensor_is_the_only_run() -> None:
    _, original = _failing(lambda: _blocks([], 1), torch.randn(1, 3, 4, 4))
    runs: list[int] = []

    def rerun() -> BaseException | None:  # the code no longer fails: nothing to record
        runs.append(1)
        return None

    diagnosis = replay(rerun, original, SourceMap(), dict, None)
    assert runs == [1] and diagnosis is not None and not diagnosis.reproduced


def test_without_a_first_pass_the_code_runs_once() -> None:
    step, original = _failing(lambda: _blocks([], 1), torch.randn(1, 3, 4, 4))
    runs: list[int] = []

    def rerun() -> BaseException | None:
        runs.append(1)
        return step()

    diagnosis = replay(rerun, original, SourceMap(), dict, None, first_pass=False)
    assert runs == [1] and _key(diagnosis) == _key(_one_lean_recording(step, original)[0])


def test_a_detach_in_place_is_found_by_the_first_pass_and_recorded_whole() -> None:
    def step() -> BaseException | None:
        x = torch.randn(3, requires_grad=True)
        y = x * 2
        z = y.sigmoid() * y  # saves y
        y.detach_()
        return runtime_error_of(lambda: z.sum().backward())

    original = step()
    assert original is not None
    first = FirstPass()
    with first:
        step()
    assert first.finding is not None and not first.finding.plain  # no early stop: detach_ is its story
    diagnosis = replay(step, original, SourceMap(), dict, None)
    assert (
        diagnosis is not None and diagnosis.inplace is not None and diagnosis.inplace.op == "Tensor.detach_"
    )


FAILING = (
    "import torch\nx = torch.randn(3, requires_grad=True)\ny = x.sigmoid()\ny += 1\ny.sum().backward()\n"
)


def test_the_check_replays_in_two_passes_only_where_its_own_run_was_overhead_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # where the failed run's graph tells nothing (a custom Function, a checkpoint's hooks: the next test)
    monkeypatch.setattr(core, "stale_in_failed_run", lambda error: None)
    for wait, passes in ((0.0, 2), (FIRST_PASS_BELOW_S + 0.05, 1)):
        result = check_cells([Cell(0, f"import time\ntime.sleep({wait})\n" + FAILING)], with_fixes=False)
        assert result.diagnosis is not None and result.diagnosis.inplace is not None
        assert result.diagnosis.inplace.op == "aten.add_.Tensor"
        assert result.executions.replay == passes, (wait, result.executions)


def test_where_the_failed_runs_graph_tells_the_check_replays_once_whatever_its_own_runs_length() -> None:
    for wait in (0.0, FIRST_PASS_BELOW_S + 0.05):
        result = check_cells([Cell(0, f"import time\ntime.sleep({wait})\n" + FAILING)], with_fixes=False)
        assert result.diagnosis is not None and result.diagnosis.inplace is not None
        assert result.diagnosis.inplace.op == "aten.add_.Tensor"
        assert result.executions.replay == 1, (wait, result.executions)
