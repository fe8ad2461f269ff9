"""What one replay recorded, as plain data: ops, saved tensors, detaches, and the failure.

The recorder (:mod:`.recorder`) fills a :class:`Trace`; the diagnosis stage reads it and nothing
else. Records hold no tensors: storage keys and versions stand for them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Literal

import torch

from .frames import Frame

Region = tuple[int, tuple[int, ...], tuple[int, ...]]  # storage offset, sizes, strides


@dataclass(frozen=True, slots=True)
class TensorInfo:
    shape: tuple[int, ...]  # -1 for a ragged dimension of a nested tensor
    dtype: str
    storage: int
    version: int
    requires_grad: bool
    is_leaf: bool
    nested: bool = False
    region: Region | None = None  # where in its storage: two slices of one buffer share the storage


@dataclass(frozen=True, slots=True)
class Write:
    """One tensor argument an op writes (``Tensor(a!)`` in its schema)."""

    storage: int
    version_before: int  # inside __torch_dispatch__ the bump has not happened yet
    region: Region | None = None  # the slice written (``h[t + 1] = ...`` is not ``h[t]``)


@dataclass(slots=True)
class OpRecord:
    seq: int
    op: str
    backward: bool
    frames: tuple[Frame, ...]
    modules: tuple[torch.nn.Module, ...]  # module call stack, outermost first
    optimizer: str | None  # "Adam.step() call #1" while an optimizer step runs
    inputs: tuple[tuple[int, int], ...] = ()  # (storage, version) of each tensor input
    producers: tuple[int | None, ...] = ()  # seq of the op that produced each input's value
    outputs: tuple[tuple[int, int], ...] = ()
    output_shape: tuple[int, ...] | None = None
    writes: tuple[Write, ...] = ()
    names: tuple[str, ...] = ()  # Python names bound to the written tensor at the user's line
    is_view: bool = False
    grad_enabled: bool = True  # False under no_grad: a view made there cannot be written with grad on
    output_dtype: torch.dtype | None = None  # a mask or an index (bool, int) carries no gradient
    scalars: tuple[float, ...] = ()  # the number arguments of a writing op (a negative slope, an alpha)

    @property
    def float_output(self) -> bool:
        dtype = self.output_dtype
        return dtype is None or dtype.is_floating_point or dtype.is_complex


@dataclass(slots=True)
class SaveRecord:
    rid: int
    tensor: TensorInfo
    prev_seq: int  # last op dispatched before the pack: the saver is this op or the next one
    frames: tuple[Frame, ...]
    modules: tuple[torch.nn.Module, ...]
    producer: int | None


@dataclass(frozen=True, slots=True)
class DetachEvent:
    seq: int
    storage: int
    frames: tuple[Frame, ...]
    modules: tuple[torch.nn.Module, ...]


@dataclass(slots=True)
class StaleUse:
    """Backward reached a saved tensor that changed since it was saved."""

    save: SaveRecord
    current_version: int
    node_name: str
    custom_function: bool  # the node belongs to a user's autograd.Function
    detached: DetachEvent | None = None
    # the custom Function's ``forward`` (its ``def`` line) when the user wrote it, and its class name
    function_forward: Frame | None = None
    # torch.utils.checkpoint saved the tensor (its inputs) to recompute the forward in backward
    checkpoint: bool = False


@dataclass(frozen=True, slots=True)
class StaleFinding:
    """The first saved tensor backward found modified, as the first pass saw it (:mod:`.first_pass`),
    or as the failed run's own graph shows it (:mod:`.failed_graph`)."""

    # its place in the order of packs (the recorder's SaveRecord.rid in the same run); -1 from the
    # failed graph, which does not know it: of the saves that fit and are then written to
    # current_version (``fitting`` memories), the one saved last is the one
    index: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    saved_version: int
    current_version: int
    node_name: str
    custom_function: bool
    function_forward: Frame | None
    checkpoint: bool
    # saved inside a backward, or detached in place rather than written: what the second pass then
    # needs lies outside the forward, so it records as it would without a first pass
    plain: bool = True
    # from the failed graph: how many memories went stale at the same shape and versions (one bug
    # in several blocks); backward read the one saved last
    fitting: int = 1


@dataclass(frozen=True, slots=True)
class HookMark:
    """A module with full backward hooks starts or ends here: autograd wraps its inputs (at the start)
    or its outputs (at the end) in ``BackwardHookFunction`` views, made by the ops that follow."""

    seq: int  # the first op recorded after the mark
    module: torch.nn.Module
    wraps: Literal["inputs", "outputs"]


@dataclass(slots=True)
class ForwardFailure:
    """An in-place error raised at a torch call itself: autograd refused the write before it reached
    the dispatcher (leaf, view, ``out=``, ``detach_`` of a view), or a backward call failed in a way no
    saved-tensor check of ours saw (a negative slope, a selective-checkpoint cache)."""

    function: str
    message: str
    frames: tuple[Frame, ...]
    modules: tuple[torch.nn.Module, ...]
    tensor: TensorInfo | None
    view_seq: int | None  # the op that created the written view
    optimizer: str | None
    custom_function_view: bool  # the view came out of an autograd.Function (e.g. a full backward hook)
    first_seq: int = 0  # the ops recorded from this seq on ran inside the failing call
    during_backward: bool = False  # the call ran inside a backward pass (recomputation, hooks, kernels)
    grad_fn: str | None = None  # class name of the written tensor's autograd node
    # the failing call as an op record that never reached the dispatcher: its inputs and writes
    call: OpRecord | None = None
    grad_inputs: tuple[int | None, ...] = ()  # producers of the call's inputs that require grad
    running_op: str | None = None  # the aten op running when it was raised, from the traceback


@dataclass
class Trace:
    """Everything one replay recorded; plain data for the diagnosis stage."""

    ops: list[OpRecord] = field(default_factory=list)
    saves: list[SaveRecord] = field(default_factory=list)
    detaches: list[DetachEvent] = field(default_factory=list)
    stale: StaleUse | None = None
    forward_failure: ForwardFailure | None = None
    construction_sites: weakref.WeakKeyDictionary[torch.nn.Module, Frame] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    roots: list[torch.nn.Module] = field(default_factory=list)
    hook_marks: list[HookMark] = field(default_factory=list)
    # op seq ranges [start, stop) run where torch disables saved-tensor hooks: saves made there
    # are autograd's own (it checks them), not ours
    unhooked: list[tuple[int, int]] = field(default_factory=list)
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    writes_by_storage: dict[int, list[int]] = field(default_factory=dict)  # storage -> op seqs

    def op(self, seq: int | None) -> OpRecord | None:
        if seq is None or not 0 <= seq < len(self.ops):
            return None
        return self.ops[seq]
