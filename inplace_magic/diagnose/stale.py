"""A saved tensor modified before backward used it (or detached in place): who wrote, who saved,
which tensor, which branch. The failing saved record comes from the recorder's unpack hook."""

from __future__ import annotations

from ..record.family import Member
from ..record.records import OpRecord, SaveRecord, StaleUse, TensorInfo, Trace
from .diagnosis import Diagnosis, ErrorInfo, OpSite
from .saver import SAVES_OUTPUT, normalise, resolve_saver, saver_op
from .sites import SiteBuilder
from .skip import find_skip, skip_decided


def writers(builder: SiteBuilder, save: SaveRecord, current_version: int) -> list[OpRecord]:
    """The recorded writes into the saved tensor's memory since the save, those that moved its
    version from the saved one to the current one first."""
    return writes_since(builder.trace, save, current_version)


def writes_since(trace: Trace, save: SaveRecord, current_version: int) -> list[OpRecord]:
    """:func:`writers` on the trace alone."""
    seqs = trace.writes_by_storage.get(save.tensor.storage, [])
    later = [trace.ops[s] for s in seqs if s > save.prev_seq]
    in_range = [
        op
        for op in later
        if any(
            w.storage == save.tensor.storage and save.tensor.version <= w.version_before < current_version
            for w in op.writes
        )
    ]
    return in_range or later


def skip_settled(trace: Trace, stale: StaleUse) -> bool:
    """Whether the ops recorded so far decide everything :func:`from_stale` reads from the trace,
    so that a replay may stop here (:meth:`~inplace_magic.record.recorder.Recorder`'s ``settled``):
    the writes are all recorded (the recorder asks only then), and the skip search's answer cannot
    change with later ops."""
    found = writes_since(trace, stale.save, stale.current_version)
    if not found or found[0].optimizer:
        return True  # no skip search
    return skip_decided(trace, stale.save, saver_op(trace, stale), found[0])


def _distinct_lines(ops: list[OpRecord], exclude: list[OpRecord]) -> list[OpRecord]:
    seen = {(op.frames[:1], op.optimizer) for op in exclude}
    out = []
    for op in ops:
        key = (op.frames[:1], op.optimizer)
        if key not in seen:
            seen.add(key)
            out.append(op)
    return out[:5]


def from_stale(builder: SiteBuilder, member: Member, error: ErrorInfo, stale: StaleUse) -> Diagnosis:
    save = stale.save
    saved_by, saver_op = resolve_saver(builder, stale)
    notes: list[str] = []
    limits: list[str] = []
    if stale.detached is not None:
        detach = stale.detached
        inplace: OpSite | None = builder.site("Tensor.detach_", detach.frames, detach.modules)
        found: list[OpRecord] = []
        current: int | None = save.tensor.version
    else:
        found = writers(builder, save, stale.current_version)
        current = stale.current_version
        inplace = builder.op_site(found[0]) if found else None
        if not found:
            limits.append(
                "No in-place operation on this tensor's memory was recorded: it was written outside "
                "PyTorch's dispatcher (through .numpy(), a custom kernel) or before the replay started."
            )
    optimizer_step = bool(found and found[0].optimizer)
    diagnosis = Diagnosis(
        kind=member.kind,
        error=error,
        inplace=inplace,
        saved_by=saved_by,
        tensor=builder.tensor(save.tensor, save.tensor.version, current),
        optimizer_step=optimizer_step,
        also_written_by=[builder.op_site(w) for w in _distinct_lines(found[1:], found[:1])],
        notes=notes,
        member=member.id,
        limits=limits,
    )
    if found and not optimizer_step and stale.detached is None:
        diagnosis.skip = find_skip(builder.trace, save, saver_op, found[0], builder.locator, builder.names)
    if member.id == "nested_message_failed":
        notes.append(
            "PyTorch failed to print this error for a nested tensor (formatting its sizes raised "
            "NotImplementedError); the replay found the version error behind it."
        )
    if found and found[0].op.startswith("aten.set_"):
        notes.append("set_() made the tensor use other memory; autograd counts it as an in-place write.")
    return diagnosis


# ops whose backward needs none of their inputs' values
_SAVES_NO_INPUT = frozenset(
    {"add", "sub", "neg", "cat", "stack", "clone", "copy", "sum", "mean", "expand", "detach", "tocopy"}
)


def from_unhooked(builder: SiteBuilder, member: Member, error: ErrorInfo) -> Diagnosis | None:
    """The version error of a tensor saved where torch lifts saved-tensor hooks (torch.func, code in
    ``disable_saved_tensors_hooks``): autograd saved and checked it itself, so no record of ours
    holds the save. The saver is taken to be the last op there whose saved value was written later."""
    trace = builder.trace
    found: tuple[OpRecord, OpRecord, tuple[int, int], str] | None = None
    for start, stop in trace.unhooked:
        for op in trace.ops[start:stop]:
            if op.backward or op.is_view:
                continue
            name = normalise(op.op)
            keys = [(k, "saved its output") for k in op.outputs if name in SAVES_OUTPUT]
            keys += [(k, "saved its input") for k in op.inputs if name not in _SAVES_NO_INPUT]
            for key, role in keys:
                later = [
                    trace.ops[s]
                    for s in trace.writes_by_storage.get(key[0], [])
                    if s > op.seq
                    and any(w.storage == key[0] and w.version_before >= key[1] for w in trace.ops[s].writes)
                ]
                if later and (found is None or op.seq >= found[0].seq):
                    found = (op, later[0], key, role)
    if found is None:
        return None
    saver, writer, key, role = found
    info = TensorInfo(writer.output_shape or (), _dtype(writer), key[0], key[1], True, False)
    diagnosis = Diagnosis(
        kind=member.kind,
        error=error,
        inplace=builder.op_site(writer),
        saved_by=builder.op_site(saver, role=role),
        tensor=builder.tensor(info, key[1], key[1] + 1),
        member=member.id,
        limits=[
            "The tensor was saved where torch turns saved-tensor hooks off (torch.func transforms, "
            "disable_saved_tensors_hooks), so autograd checked it without the replay's records: the "
            "saver is inferred as the last op there whose saved value was written in place later."
        ],
    )
    diagnosis.skip = None
    return diagnosis


def _dtype(op: OpRecord) -> str:
    return str(op.output_dtype).replace("torch.", "") if op.output_dtype is not None else "?"
