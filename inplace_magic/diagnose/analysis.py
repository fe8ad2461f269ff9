"""Turn a replay's records into a :class:`Diagnosis`: who wrote, who saved, which tensor, which branch.

The failing saved record comes from the unpack hook (backward-time errors) or from the function mode
(forward-time leaf/view errors); everything else is looked up in the trace. Error text is used only
to decide the kind, never to name an operation.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from typing import Any

import torch

from ..record.family import Kind, classify
from ..record.frames import Frame
from ..record.records import ForwardFailure, OpRecord, SaveRecord, StaleUse, Trace
from ..replay.run import CellLookup
from .diagnosis import Diagnosis, ErrorInfo, Location, OpSite, TensorSummary
from .explain import explain
from .locations import Locator
from .module_names import ModuleNamer
from .skip import find_skip


def _normalise(name: str) -> str:
    """``ReluBackward0`` / ``aten.relu_.default`` / ``aten._softmax.default`` -> ``relu`` / ``softmax``."""
    if name.startswith("aten."):
        name = name.split(".")[1]
    name = re.sub(r"Backward\d*$", "", name)
    return name.replace("_", "").lower()


def _op_matches(op: OpRecord | None, node_name: str) -> bool:
    return op is not None and _normalise(op.op) == _normalise(node_name)


class _Builder:
    def __init__(self, trace: Trace, source_map: CellLookup, namespace: dict[str, Any] | None) -> None:
        self.trace = trace
        self.locator = Locator(source_map)
        self.names = ModuleNamer(trace, namespace or {})

    def site(
        self,
        op: str,
        frames: tuple[Frame, ...],
        modules: tuple[torch.nn.Module, ...],
        **extra: Any,
    ) -> OpSite:
        module = modules[-1] if modules else None
        defined_at = None
        if module is not None and type(module).__module__.startswith("torch."):
            # the op ran inside torch's own module code: the user's edit goes where it was built
            defined_at = self.locator.location(self.trace.construction_sites.get(module))
        return OpSite(
            op=op,
            location=self.locator.location(frames[0] if frames else None),
            module=self.names.path(modules),
            module_type=self.names.describe(module) if module is not None else None,
            defined_at=defined_at,
            stack=self.locator.stack(frames),
            **extra,
        )

    def op_site(self, op: OpRecord, **extra: Any) -> OpSite:
        return self.site(op.op, op.frames, op.modules, optimizer=op.optimizer, names=op.names, **extra)

    # -- backward-time: a saved tensor was modified

    def saver(self, stale: StaleUse) -> tuple[OpSite, OpRecord | None]:
        save = stale.save
        # an op saves its inputs just before it is dispatched and its outputs just after, so the
        # saver is the op before the pack or the one after it; the autograd node's name decides
        candidates = [self.trace.op(save.prev_seq), self.trace.op(save.prev_seq + 1)]
        key = (save.tensor.storage, save.tensor.version)
        named = [c for c in candidates if c is not None and _op_matches(c, stale.node_name)]
        op = named[0] if len(named) == 1 else _closest(named, save, key)
        if op is None and not stale.custom_function:
            # names that do not normalise alike (NllLossBackward0 <- aten.nll_loss_forward):
            # the neighbour that holds the saved value
            op = next(
                (c for c in candidates if c is not None and (key in c.inputs or key in c.outputs)), None
            )
        if op is None:
            name = re.sub(r"Backward\d*$", "", stale.node_name)
            op_name = f"{name}.apply" if stale.custom_function else stale.node_name
            role = "saved it with ctx.save_for_backward" if stale.custom_function else "saved it"
        else:
            op_name = op.op
            role = "saved its output" if key in op.outputs and key not in op.inputs else "saved its input"
        return (
            self.site(op_name, save.frames, save.modules, role=role, node=stale.node_name),
            op,
        )

    def writers(self, save: SaveRecord, current_version: int) -> list[OpRecord]:
        seqs = self.trace.writes_by_storage.get(save.tensor.storage, [])
        later = [self.trace.ops[s] for s in seqs if s > save.prev_seq]
        in_range = [
            op
            for op in later
            if any(
                w.storage == save.tensor.storage and save.tensor.version <= w.version_before < current_version
                for w in op.writes
            )
        ]
        return in_range or later

    def parameter(self, storage: int) -> str | None:
        return self.names.parameter(storage)

    def tensor(self, save: SaveRecord, current: int | None) -> TensorSummary:
        info = save.tensor
        return TensorSummary(
            shape=info.shape,
            dtype=info.dtype,
            saved_version=info.version,
            version=current,
            parameter=self.parameter(info.storage),
            is_leaf=info.is_leaf,
            requires_grad=info.requires_grad,
        )


def diagnose(
    trace: Trace,
    original: BaseException,
    source_map: CellLookup,
    namespace: dict[str, Any] | None = None,
    replay_error: BaseException | None = None,
    error_location: Location | None = None,
) -> Diagnosis | None:
    """The diagnosis of ``original`` from the replay's ``trace``; None when the error is not ours."""
    kind = classify(original)
    if kind is None:
        return None
    # the analysis allocates an index per recorded op and frees no cycles: without collections
    # triggered by those allocations (each one scanning the whole trace) it stays linear in its size
    with _gc_paused():
        return _diagnose(trace, kind, original, source_map, namespace, replay_error, error_location)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _diagnose(
    trace: Trace,
    kind: Kind,
    original: BaseException,
    source_map: CellLookup,
    namespace: dict[str, Any] | None,
    replay_error: BaseException | None,
    error_location: Location | None,
) -> Diagnosis:
    builder = _Builder(trace, source_map, namespace)
    error = ErrorInfo(type(original).__name__, str(original), error_location)
    if trace.stale is not None:
        return _from_stale(builder, kind, error, trace.stale)
    if trace.forward_failure is not None:
        return _from_forward(builder, kind, error, trace.forward_failure)
    diagnosis = Diagnosis(kind=kind, error=error, inplace=None, saved_by=None, tensor=None, reproduced=False)
    what = "passed" if replay_error is None else f"raised {type(replay_error).__name__}: {replay_error}"
    diagnosis.notes.append(
        f"The diagnostic replay did not reproduce the error (it {what}); the code may depend on state "
        "that a re-run does not recreate (files, time, unseeded randomness)."
    )
    explain(diagnosis)
    return diagnosis


# ops whose backward needs their own result: a pack right after one of them is its output
_SAVES_OUTPUT = frozenset(
    {"relu", "sigmoid", "tanh", "exp", "softmax", "logsoftmax", "elu", "leakyrelu", "sqrt", "rsqrt", "celu"}
)


def _closest(named: list[OpRecord], save: SaveRecord, key: tuple[int, int]) -> OpRecord | None:
    """Two neighbours of the pack run the node's op (``conv(conv(x))``): pick the one that saved."""
    if not named:
        return None
    previous, following = named[0], named[-1]
    # the pack ran inside the saver's module call (a stem conv and a shortcut conv differ here)
    same_module = [op for op in named if op.modules[-1:] == save.modules[-1:] and op.modules == save.modules]
    if len(same_module) == 1:
        return same_module[0]
    if key in following.inputs and _normalise(previous.op) not in _SAVES_OUTPUT:
        return following
    return previous


def _from_stale(builder: _Builder, kind: Kind, error: ErrorInfo, stale: StaleUse) -> Diagnosis:
    save = stale.save
    saved_by, saver_op = builder.saver(stale)
    notes: list[str] = []
    if stale.detached is not None:
        detach = stale.detached
        inplace: OpSite | None = builder.site("Tensor.detach_", detach.frames, detach.modules)
        writers: list[OpRecord] = []
        current: int | None = save.tensor.version
    else:
        writers = builder.writers(save, stale.current_version)
        current = stale.current_version
        inplace = builder.op_site(writers[0]) if writers else None
        if not writers:
            notes.append(
                "No in-place operation on this tensor's memory was recorded: it was written outside "
                "PyTorch's dispatcher (through .numpy(), a custom kernel) or before the replay started."
            )
    optimizer_step = bool(writers and writers[0].optimizer)
    diagnosis = Diagnosis(
        kind=kind,
        error=error,
        inplace=inplace,
        saved_by=saved_by,
        tensor=builder.tensor(save, current),
        optimizer_step=optimizer_step,
        also_written_by=[builder.op_site(w) for w in _distinct_lines(writers[1:], writers[:1])],
        notes=notes,
    )
    if writers and not optimizer_step and stale.detached is None:
        diagnosis.skip = find_skip(builder.trace, save, saver_op, writers[0], builder.locator, builder.names)
    explain(diagnosis)
    return diagnosis


def _distinct_lines(ops: list[OpRecord], exclude: list[OpRecord]) -> list[OpRecord]:
    seen = {(op.frames[:1], op.optimizer) for op in exclude}
    out = []
    for op in ops:
        key = (op.frames[:1], op.optimizer)
        if key not in seen:
            seen.add(key)
            out.append(op)
    return out[:5]


_MULTI_OUTPUT_VIEWS = frozenset({"split", "split_with_sizes", "unbind", "chunk", "unsafe_split"})


def _view_role(view_op: OpRecord, custom_function: bool) -> str:
    """Why autograd refuses to write through this view, decided from how the view was made."""
    name = view_op.op.split(".")[1] if view_op.op.startswith("aten.") else view_op.op
    if custom_function:  # checked first: a Function's forward also runs under no_grad
        return "created the view inside a custom Function or a module's backward hook"
    if not view_op.grad_enabled:
        return "created the view under no_grad"
    if name in _MULTI_OUTPUT_VIEWS:
        return f"created the view as one of several outputs ({name})"
    return "created the view"


def _from_forward(builder: _Builder, kind: Kind, error: ErrorInfo, failure: ForwardFailure) -> Diagnosis:
    inplace = builder.site(
        failure.function,
        failure.frames,
        failure.modules,
        optimizer=failure.optimizer,
    )
    saved_by = None
    view_op = builder.trace.op(failure.view_seq)
    if view_op is not None and kind != "leaf_inplace":
        saved_by = builder.op_site(view_op, role=_view_role(view_op, failure.custom_function_view))
    tensor = None
    if failure.tensor is not None:
        info = failure.tensor
        tensor = TensorSummary(
            shape=info.shape,
            dtype=info.dtype,
            saved_version=None,
            version=info.version,
            parameter=builder.parameter(info.storage),
            is_leaf=info.is_leaf,
            requires_grad=info.requires_grad,
        )
    diagnosis = Diagnosis(kind=kind, error=error, inplace=inplace, saved_by=saved_by, tensor=tensor)
    explain(diagnosis)
    return diagnosis
