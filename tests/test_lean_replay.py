"""The replay's shortcuts for speed (issue 15) against the full recording and the full walk they replace:
the same diagnosis, the same state put back, less work."""

from __future__ import annotations

import textwrap
from typing import Any

import torch
from IPython.core.inputtransformer2 import TransformerManager
from step_errors import runtime_error_of
from torch.utils._python_dispatch import TorchDispatchMode

from inplace_magic.diagnose.analysis import diagnose
from inplace_magic.diagnose.diagnosis import Diagnosis
from inplace_magic.pipeline.core import recorder_for, replay
from inplace_magic.record.recorder import BACKWARD_MARK, Recorder
from inplace_magic.record.records import Trace
from inplace_magic.record.torch_facts import op_info, op_inputs, tensors_in
from inplace_magic.replay.celldeps import hides_names, names_read
from inplace_magic.replay.kernel import CellCode, FailedCell, KernelRerun, replay_in_kernel
from inplace_magic.replay.run import SourceMap
from inplace_magic.replay.undo import ObjectSnapshot, WriteLog


class Block(torch.nn.Module):
    """A residual block whose in-place ReLU writes the tensor its skip connection saved."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out = out + x.sigmoid()  # the sigmoid saves its output ...
        return torch.relu_(out) * x.sigmoid().mul_(2)  # ... and this one is written after it saved


def _step() -> BaseException | None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(Block(), Block())
    return runtime_error_of(lambda: model(torch.randn(2, 4, 5, 5)).sum().backward())


def _story(diagnosis: Diagnosis | None) -> tuple[Any, ...]:
    assert diagnosis is not None and diagnosis.inplace is not None and diagnosis.saved_by is not None
    inplace, saved = diagnosis.inplace, diagnosis.saved_by
    tensor = diagnosis.tensor
    assert tensor is not None
    return (
        (inplace.op, inplace.location.line if inplace.location else None, inplace.module),
        (saved.op, saved.role, saved.location.line if saved.location else None),
        (tensor.saved_version, tensor.version, tensor.shape),
        None if diagnosis.skip is None else (diagnosis.skip.merge_op, diagnosis.skip.merge_kind),
    )


def test_the_lean_recording_tells_the_same_story_as_recording_everything_with_fewer_records() -> None:
    original = _step()
    assert original is not None
    with Recorder() as full:
        _step()
    lean = recorder_for(original)
    with lean:
        _step()
    assert lean.saw_enough()
    lean_story = _story(diagnose(lean.trace, original, SourceMap(), {}))
    assert lean_story == _story(diagnose(full.trace, original, SourceMap(), {}))
    assert lean_story[0][0] == "aten.mul_.Tensor" and lean_story[1][0] == "aten.sigmoid.default"
    # one mark per backward call instead of autograd's ops, and no torch-call records
    assert [op.op for op in lean.trace.ops].count(BACKWARD_MARK) == 1
    assert len(lean.trace.ops) < len(full.trace.ops)


def test_the_pipeline_records_once_after_its_first_pass_when_the_lean_recording_saw_enough() -> None:
    original = _step()
    assert original is not None
    runs = []

    def rerun() -> BaseException | None:
        runs.append(1)
        return _step()

    diagnosis = replay(rerun, original, SourceMap(), dict, None)
    assert diagnosis is not None and diagnosis.reproduced and runs == [1, 1]  # first pass, recording
    assert _story(diagnosis) == _story(diagnose(_recorded(original), original, SourceMap(), {}))


def _recorded(original: BaseException) -> Trace:
    lean = recorder_for(original)
    with lean:
        _step()
    return lean.trace


def test_a_write_made_inside_backward_sends_the_pipeline_to_a_second_pass_that_names_it() -> None:
    # without an undo log the lean pass runs backward without the dispatch mode: a tensor hook's
    # write is not seen, saw_enough() says so, and the replay runs again recording everything
    def step() -> BaseException | None:
        x = torch.randn(3, requires_grad=True)
        y = x.sigmoid()
        z = y * 2

        def write_saved(grad: torch.Tensor) -> None:
            y.mul_(2)

        z.register_hook(write_saved)
        return runtime_error_of(lambda: z.sum().backward())

    original = step()
    assert original is not None and "modified by an inplace operation" in str(original)
    lean = recorder_for(original)
    with lean:
        step()
    assert not lean.saw_enough()
    runs = []

    def rerun() -> BaseException | None:
        runs.append(1)
        return step()

    diagnosis = replay(rerun, original, SourceMap(), dict, None)
    assert runs == [1, 1, 1]  # the first pass, the lean recording, the recording of everything
    assert diagnosis is not None and diagnosis.inplace is not None and diagnosis.saved_by is not None
    assert diagnosis.inplace.op == "aten.mul_.Tensor" and diagnosis.saved_by.op == "aten.sigmoid.default"

    # with an undo log the hook registered in the replay keeps the mode on for backward (a hook the
    # replay does not see registered is the guard's, tests/test_lifted_backward.py): its write is seen
    with recorder_for(original, undo=WriteLog()) as observed:
        step()
    assert observed.saw_enough() and not observed.backward_ran_python


class _CompareInputs(TorchDispatchMode):
    """Every op dispatched: the schema-guided inputs against a walk of every argument."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        walked = [t for a in args for t in tensors_in(a)] + [
            t for a in kwargs.values() for t in tensors_in(a)
        ]
        found = op_inputs(op_info(func), args, kwargs)
        assert [id(t) for t in found] == [id(t) for t in walked], func
        self.checked += 1
        return func(*args, **kwargs)


def test_an_ops_inputs_found_from_its_schema_are_every_tensor_argument_in_order() -> None:
    with _CompareInputs() as mode:
        _step()
        lstm = torch.nn.LSTM(3, 4, batch_first=True)  # tensor lists among the arguments
        lstm(torch.randn(2, 5, 3))[0].sum().backward()
        torch.cat([torch.ones(2), torch.zeros(2)]).index_put_((torch.tensor([0]),), torch.tensor(5.0))
    assert mode.checked > 50  # forward and backward ops of each model


def test_the_undo_log_as_the_recorders_observer_restores_what_the_replay_wrote() -> None:
    weights = torch.arange(6.0)
    log = WriteLog()
    with Recorder(undo=log) as recorder:
        weights.mul_(3)
        torch.ones(4).add_(1)  # born in the replay: never copied
    assert weights.tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    assert log.copied_bytes == weights.untyped_storage().nbytes()
    assert all(copy_op.op != "aten.clone.default" for copy_op in recorder.trace.ops)  # its copies are not ops
    log.restore()
    assert weights.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and weights._version == 0


def test_a_snapshot_from_the_cells_names_follows_the_notebooks_code_and_skips_the_rest() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(  # a notebook: a hook registered in an earlier cell appends to a global list
        textwrap.dedent(
            """
            import torch
            seen = []
            def remember(module, inputs, output):
                seen.append(output.shape)
            model = torch.nn.Linear(2, 2)
            model.register_forward_hook(remember)
            unrelated = [[i] for i in range(5000)]
            """
        ),
        namespace,
    )
    snapshot = ObjectSnapshot.take(namespace, roots={"model"})
    namespace["model"](torch.ones(1, 2))
    namespace["unrelated"].append([0])  # the cell cannot reach it: not snapshotted, not walked
    snapshot.restore()
    assert namespace["seen"] == []  # reached through the model's hook and the function's globals
    assert len(namespace["unrelated"]) == 5001
    assert len(snapshot.lists) < 10 and snapshot.complete


def test_the_body_of_a_code_running_magic_is_read_and_any_other_magic_falls_back() -> None:
    transform = TransformerManager().transform_cell
    timed = transform("%%time\ncalls.append(1)\nloss.backward()\n")
    assert {"calls", "loss"} <= names_read(timed) and not hides_names([timed])
    for other in ("%run train.py\n", "%%bash\necho hi > f\n", "!ls\n"):
        assert hides_names([transform(other)]), other
    assert not hides_names([transform("model(x).sum().backward()\n")])


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_cell("import torch\nweights = torch.zeros(3)\nhistory = []\n")
    return shell


def test_a_kernel_replay_without_a_recorder_still_undoes_its_tensor_writes() -> None:
    # a caller that re-executes without a recorder (the live verification of a fix): the undo log
    # is then a dispatch mode of its own
    shell = _shell()
    window = FailedCell([CellCode(99, "weights.add_(1)\nhistory.append(1)\n", "<replayed>")], None)
    seen = []

    def under(rerun: KernelRerun) -> None:
        assert rerun() is None
        seen.append(shell.user_ns["weights"].tolist())

    replay_in_kernel(shell, window, under)
    assert seen == [[1.0, 1.0, 1.0]]
    assert shell.user_ns["weights"].tolist() == [0.0, 0.0, 0.0] and shell.user_ns["history"] == []


def test_a_kernel_replay_under_the_recorder_undoes_its_writes_through_the_recorders_mode() -> None:
    shell = _shell()
    window = FailedCell([CellCode(99, "weights.mul_(2).add_(1)\n", "<replayed>")], None)

    def under(rerun: KernelRerun) -> list[str]:
        with Recorder(undo=rerun.undo) as recorder:
            assert rerun() is None
        assert rerun.undo.copied_bytes == shell.user_ns["weights"].untyped_storage().nbytes()
        return [op.op for op in recorder.trace.ops]

    ops = replay_in_kernel(shell, window, under)
    assert ops == ["aten.mul_.Tensor", "aten.add_.Tensor"]  # the log's copies are not the user's ops
    assert shell.user_ns["weights"].tolist() == [0.0, 0.0, 0.0]
