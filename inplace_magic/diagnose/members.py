"""The rest of the family: errors that are no stale saved tensor and no leaf or view rule.

Each member's analysis reads the trace, never the message: which in-place activation had a negative
slope (its recorded arguments), which ``out=`` call autograd refused (the call's tensors), which op
wrote inside a saved-tensor pack hook (the ops recorded during the failing call), which cached
output a selective checkpoint found changed (the op running at the failure, and the write into its
output), which captured tensor a ``torch.func`` transform refused, which ``set_()`` cut a tensor from
the graph. A member that the replay cannot confirm returns None: the error is then not ours.
"""

from __future__ import annotations

from collections.abc import Callable

from ..record.family import Member
from ..record.records import ForwardFailure, OpRecord, SaveRecord, Trace
from .diagnosis import Diagnosis, ErrorInfo, OpSite, TensorSummary
from .sites import SiteBuilder
from .skip import find_skip

Analysis = Callable[[SiteBuilder, Member, ErrorInfo, ForwardFailure], Diagnosis | None]

# in-place activations whose backward computes from the result, and the slope that must be >= 0
_SLOPE_OPS = {"leaky_relu_": "negative_slope", "elu_": "alpha", "celu_": "alpha"}


def _aten(op: OpRecord) -> str:
    return op.op.split(".")[1] if op.op.startswith("aten.") else op.op


def _forward_ops(trace: Trace, before: int | None = None) -> list[OpRecord]:
    stop = len(trace.ops) if before is None else before
    return [op for op in trace.ops[:stop] if not op.backward and op.optimizer is None]


def tensor_of(op: OpRecord, saved_version: int | None = None) -> TensorSummary | None:
    """The tensor an op wrote or returned, from its record (shape, dtype, version after it)."""
    if op.output_shape is None:
        return None
    version = op.writes[0].version_before + 1 if op.writes else None
    return TensorSummary(
        shape=op.output_shape,
        dtype=str(op.output_dtype).replace("torch.", "") if op.output_dtype is not None else "?",
        saved_version=saved_version,
        version=version,
    )


def _diagnosis(
    member: Member,
    error: ErrorInfo,
    inplace: OpSite | None,
    saved_by: OpSite | None = None,
    tensor: TensorSummary | None = None,
    limits: list[str] | None = None,
) -> Diagnosis:
    return Diagnosis(
        kind=member.kind,
        error=error,
        inplace=inplace,
        saved_by=saved_by,
        tensor=tensor,
        member=member.id,
        limits=list(limits or []),
    )


def negative_slope(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """``LeakyReLU(negative_slope<0, inplace=True)``, ``ELU/CELU(alpha<0, inplace=True)``: the in-place
    op saves only its result, from which a negative slope cannot recover the input."""
    found = [
        op
        for op in _forward_ops(builder.trace, failure.first_seq)
        if _aten(op) in _SLOPE_OPS and op.writes and op.scalars and op.scalars[0] < 0
    ]
    if not found:
        return None
    op = found[-1]  # backward reaches the last one first
    parameter = _SLOPE_OPS[_aten(op)]
    site = builder.op_site(op)
    saved = builder.op_site(op, role=f"saved its own result (in place, with {parameter}={op.scalars[0]:g})")
    return _diagnosis(member, error, site, saved_by=saved, tensor=tensor_of(op, saved_version=None))


def out_argument(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """``torch.add(x, y, out=x)`` with an input that requires grad: autograd refuses the call."""
    call = failure.call
    inplace = builder.site(failure.function, failure.frames, failure.modules, optimizer=failure.optimizer)
    tensor = builder.tensor(failure.tensor, None, failure.tensor.version) if failure.tensor else None
    diagnosis = _diagnosis(member, error, inplace, tensor=tensor)
    producers = [builder.trace.op(p) for p in failure.grad_inputs]
    sources = [p for p in producers if p is not None]
    if sources:
        first = sources[0]
        diagnosis.saved_by = builder.op_site(
            first, role="made the input that requires grad (nothing was saved: out= calls are not recorded)"
        )
    if call is not None and failure.tensor is not None and call.writes:
        out_key = (call.writes[0].storage, call.writes[0].version_before)
        if out_key in call.inputs:  # the result goes into one of the operands: an in-place merge
            index = call.inputs.index(out_key)
            save = SaveRecord(-1, failure.tensor, call.seq - 1, (), (), call.producers[index])
            diagnosis.skip = find_skip(builder.trace, save, None, call, builder.locator, builder.names)
    return diagnosis


def pack_hook_write(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """A user's ``saved_tensors_hooks`` pack function wrote the tensor it was given."""
    inside = builder.trace.ops[failure.first_seq :]
    writer = next((op for op in inside if op.writes), None)
    if writer is None:
        return None
    saver = next((op for op in reversed(inside) if op.seq < writer.seq and not op.writes), None)
    saved_by = (
        builder.op_site(saver, role="saved the tensor; the pack hook received it")
        if saver is not None
        else builder.site(failure.function, failure.frames, failure.modules, role="saved the tensor")
    )
    return _diagnosis(member, error, builder.op_site(writer), saved_by=saved_by, tensor=tensor_of(writer, 0))


def checkpoint_cache_mutated(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """Selective activation checkpointing cached an op's output, and a later write changed it."""
    trace = builder.trace
    limits: list[str] = []
    forward = _forward_ops(trace)
    cached = [op for op in forward if failure.running_op is None or op.op == failure.running_op]
    if failure.running_op is None:
        limits.append(
            "The selective checkpoint's policy is not recorded: the cached op is taken to be the first "
            "one whose output was written in place afterwards."
        )
    for op in cached:
        for key in op.outputs:
            writes = [
                trace.ops[s]
                for s in trace.writes_by_storage.get(key[0], [])
                if s > op.seq and not trace.ops[s].backward
            ]
            if writes:
                writer = writes[0]
                role = "its output was cached by selective activation checkpointing"
                saved_by = builder.op_site(op, role=role)
                return _diagnosis(
                    member,
                    error,
                    builder.op_site(writer),
                    saved_by=saved_by,
                    tensor=tensor_of(writer, key[1]),
                    limits=limits,
                )
    return None


def functorch_captured(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """A ``torch.func`` transform refused a write into a tensor captured from outside its function."""
    inplace = builder.site(failure.function, failure.frames, failure.modules, optimizer=failure.optimizer)
    tensor = builder.tensor(failure.tensor, None, failure.tensor.version) if failure.tensor else None
    limits = [
        "Inside torch.func transforms the replay records no saved tensors (the transforms refuse "
        "saved-tensor hooks), so only the writing line and the captured tensor are known."
    ]
    saved_by = _creator(builder, failure.tensor.storage, failure.first_seq) if failure.tensor else None
    return _diagnosis(member, error, inplace, tensor=tensor, saved_by=saved_by, limits=limits)


def _creator(builder: SiteBuilder, storage: int, failed_at: int) -> OpSite | None:
    """The recorded op that made the memory a captured tensor lives in: the last op before the
    failure that allocated a value there. Not the first: the address is the memory's, and a tensor
    freed earlier in the replay may have had it too; while this one lives no other can."""
    for op in reversed(builder.trace.ops[:failed_at]):
        allocated = any(key[0] == storage for key in op.outputs) and not op.is_view
        if allocated and not op.backward and all(w.storage != storage for w in op.writes):
            return builder.op_site(op, role="created the captured tensor")
    return None


def unused_after_set(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """``set_()`` swapped a tensor's storage, so the tensor differentiated no longer is in the graph."""
    swaps = [op for op in builder.trace.ops[: failure.first_seq] if _aten(op) == "set_" and op.writes]
    if not swaps:
        return None  # a genuinely unused input: not an in-place error
    writer = swaps[-1]
    return _diagnosis(
        member,
        error,
        builder.op_site(writer),
        tensor=tensor_of(writer),
        limits=[
            "Nothing was saved for backward here: set_() replaced the tensor's storage, and the tensor "
            "that is differentiated no longer appears in the graph built before it."
        ],
    )


def gradient_modified(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis | None:
    """A gradient was written in place between the node that made it and the node that used it
    (the check proposed in pytorch PR #185286): the write runs during backward, in a hook."""
    raised_at = failure.frames[:1]
    writes = [
        op
        for op in builder.trace.ops[failure.first_seq :]
        if op.backward and op.writes and op.frames and op.frames[:1] != raised_at
    ]
    if not writes:
        return None
    writer = writes[0]
    return _diagnosis(
        member,
        error,
        builder.op_site(writer),
        tensor=tensor_of(writer),
        limits=[
            "The node that produced the gradient and the one that consumed it are not recorded; the "
            "write is the first one made during backward by the user's code (a hook)."
        ],
    )


ANALYSES: dict[str, Analysis] = {
    "negative_slope": negative_slope,
    "out_argument": out_argument,
    "pack_hook_write": pack_hook_write,
    "checkpoint_cache_mutated": checkpoint_cache_mutated,
    "functorch_captured": functorch_captured,
    "unused_after_set": unused_after_set,
    "gradient_modified": gradient_modified,
}
