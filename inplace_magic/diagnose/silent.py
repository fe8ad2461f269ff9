"""Silent hazards: writes into memory autograd saved for a backward that then read it, which
PyTorch's version counter did not see (the audit, ``--audit``).

From the audit recorder's records (:mod:`..record.saved_contents`): for each saved tensor that
backward unpacked at its saved version, the dispatched writes into its memory between the save
and the unpack, and whether its contents changed. Either is a hazard; each is diagnosed as a
stale saved tensor is (writer, saver, tensor, skip), grouped by writer and saver line, and
labelled "silent: PyTorch did not detect this".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..record.family import FAMILY
from ..record.records import OpRecord, Region, SaveRecord, StaleUse
from ..record.saved_contents import ContentsLog, Unpacked
from ..replay.run import CellLookup
from .diagnosis import Diagnosis, ErrorInfo, Location
from .explain import explain
from .saver import resolve_saver
from .sites import SiteBuilder
from .skip import find_skip
from .stale import from_stale

SILENT = "silent: PyTorch did not detect this"
_MEMBER = next(m for m in FAMILY if m.id == "saved_tensor_modified")


@dataclass
class Hazard:
    """One silent write (a group of saves with the same writer and saver lines)."""

    diagnosis: Diagnosis
    saves: int  # saved tensors it overwrote (e.g. each parameter of a layer, each iteration)
    cause: str  # "fused", "data", "unrecorded", "data_assigned", "other", "compiled"


def _overlaps(a: Region | None, b: Region | None) -> bool:
    """Two regions of one storage may share an element (unknown regions are taken to overlap)."""
    if a is None or b is None:
        return True
    (off_a, sizes_a, strides_a), (off_b, sizes_b, strides_b) = a, b
    if 0 in sizes_a or 0 in sizes_b:
        return False
    end_a = off_a + sum((s - 1) * abs(st) for s, st in zip(sizes_a, strides_a, strict=False))
    end_b = off_b + sum((s - 1) * abs(st) for s, st in zip(sizes_b, strides_b, strict=False))
    return off_a <= end_b and off_b <= end_a


def silent_writers(builder: SiteBuilder, save: SaveRecord, unpacked: Unpacked) -> list[OpRecord]:
    """The forward-time writes into the saved tensor's memory after the save, before the unpack."""
    trace = builder.trace
    storage = save.tensor.storage
    return [
        trace.ops[s]
        for s in trace.writes_by_storage.get(storage, [])
        if save.prev_seq < s < unpacked.seq
        and not trace.ops[s].backward
        and any(w.storage == storage and _overlaps(w.region, save.tensor.region) for w in trace.ops[s].writes)
    ]


def _updated_by_its_saver(trace: Any, save: SaveRecord) -> bool:
    """BatchNorm saves its running statistics and updates them in the same op, without a version
    bump or a schema annotation (engine notes, section 1); its training-mode backward reads the batch
    statistics instead, so the change is no hazard."""
    if save.tensor.requires_grad:
        return False
    around = (trace.op(save.prev_seq), trace.op(save.prev_seq + 1))
    return any(op is not None and "batch_norm" in op.op for op in around)


def _cause(writers: list[OpRecord], unpacked: Unpacked) -> str:
    if unpacked.storage_swapped:
        return "data_assigned"
    if not writers:
        return "unrecorded"
    if "_fused_" in writers[0].op:
        return "fused"
    return "data" if writers[0].optimizer is None else "other"


_WHY = {
    "fused": "A fused optimizer kernel updates the parameters without bumping their version counters, "
    "so autograd's check saw nothing and this backward used the updated values.",
    "data": "The write went through `.data` (or another alias with a version counter of its own), so "
    "autograd's check saw nothing and backward used the overwritten values.",
    "other": "The write did not bump the saved tensor's version counter, so autograd's check saw nothing "
    "and backward used the overwritten values.",
    "unrecorded": "The saved values changed, but no operation reached PyTorch's dispatcher: a write "
    "through `.numpy()`, a custom kernel or a C extension. Autograd's check saw nothing and backward "
    "used the changed values.",
    "compiled": "Eager PyTorch raises its in-place error here; the compiled graph does not: the tensor it "
    "saved does not share the written tensor's version counter (Inductor rebuilds a saved view of an "
    "input with reinterpret_tensor, pytorch issue #197887), so its backward used the overwritten values.",
    "data_assigned": "The leaf's `.data` was assigned after the forward saved it: a plain run's backward "
    "then reads the new values (without the audit's hooks autograd saves the leaf itself), which do not "
    "match the forward that produced this graph.",
}


def _diagnose(
    builder: SiteBuilder, save: SaveRecord, unpacked: Unpacked, writers: list[OpRecord], cause: str
) -> Diagnosis:
    stale = StaleUse(save, unpacked.version, unpacked.node, custom_function=False)
    saved_by, saver_op = resolve_saver(builder, stale)
    writer = writers[0] if writers else None
    location = builder.location(unpacked.frames[0] if unpacked.frames else None)
    diagnosis = Diagnosis(
        kind="version_counter",
        error=ErrorInfo("SilentWrite", f"{SILENT}: {_WHY[cause]}", location),
        inplace=builder.op_site(writer) if writer is not None else None,
        saved_by=saved_by,
        tensor=builder.tensor(save.tensor, save.tensor.version, unpacked.version),
        optimizer_step=bool(writer is not None and writer.optimizer),
        member=_MEMBER.id,
    )
    seen = {(writer.frames[:1], writer.optimizer)} if writer is not None else set()
    for other in writers[1:]:
        if (other.frames[:1], other.optimizer) not in seen and len(seen) < 5:
            seen.add((other.frames[:1], other.optimizer))
            diagnosis.also_written_by.append(builder.op_site(other))
    if writer is None:
        diagnosis.limits.append(
            "No in-place operation on this tensor's memory was recorded: it was written outside "
            "PyTorch's dispatcher (through .numpy(), a custom kernel)"
            + (" or its .data was assigned." if cause == "data_assigned" else ".")
        )
    elif not writer.optimizer:
        diagnosis.skip = find_skip(builder.trace, save, saver_op, writer, builder.locator, builder.names)
    if unpacked.contents == "same" and writer is not None:
        diagnosis.notes.append(
            "The values happened to be unchanged this time (the write stored what was there), so this "
            "run's gradients are right; a run with other values gets stale ones."
        )
    explain(diagnosis)
    diagnosis.headline = f"{SILENT}. {diagnosis.headline}"
    diagnosis.explanation = f"{_WHY[cause]} {diagnosis.explanation}"
    return diagnosis


def silent_hazards(
    trace: Any, contents: ContentsLog, source_map: CellLookup, namespace: dict[str, Any] | None
) -> list[Hazard]:
    """Every silent write the audit run saw, one :class:`Hazard` per writer and saver line."""
    builder = SiteBuilder(trace, source_map, namespace)
    groups: dict[tuple[object, ...], Hazard] = {}
    for rid, unpacked in sorted(contents.unpacked.items()):
        save = trace.saves[rid]
        if unpacked.version != save.tensor.version:
            continue  # autograd saw this one (the replay stops there, as the plain run raises)
        writers = silent_writers(builder, save, unpacked)
        if not writers and unpacked.contents != "changed" and not unpacked.storage_swapped:
            continue
        if not writers and _updated_by_its_saver(trace, save):
            continue
        cause = _cause(writers, unpacked)
        writer = writers[0] if writers else None
        key = (
            writer.frames[:1] if writer else None,
            writer.optimizer.split(" call")[0] if writer and writer.optimizer else None,
            save.frames[:1],
            cause,
        )
        if key in groups:
            groups[key].saves += 1
            continue
        groups[key] = Hazard(_diagnose(builder, save, unpacked, writers, cause), 1, cause)
    return list(groups.values())


def hidden_by_compile(
    trace: Any, source_map: CellLookup, namespace: dict[str, Any] | None, location: Location | None
) -> Hazard | None:
    """The version error the eager audited run stopped at, when the plain (compiled) run raised none.

    A compiled graph that saves a view of its input rebuilds that view over the same storage with a
    version counter of its own (Inductor's ``reinterpret_tensor``, pytorch issue #197887): an in-place
    write into the input between forward and backward then passes autograd's check. Eagerly, under the
    recorder, the write is seen, and diagnosed as the error eager PyTorch raises.
    """
    if trace.stale is None:
        return None
    builder = SiteBuilder(trace, source_map, namespace)
    error = ErrorInfo("SilentWrite", f"{SILENT}: {_WHY['compiled']}", location)
    diagnosis = from_stale(builder, _MEMBER, error, trace.stale)
    explain(diagnosis)
    diagnosis.headline = f"{SILENT}. {diagnosis.headline}"
    diagnosis.explanation = f"{_WHY['compiled']} {diagnosis.explanation}"
    return Hazard(diagnosis, 1, "compiled")
