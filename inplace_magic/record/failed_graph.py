"""What the failed run's own autograd graph says of its stale saved tensor, without running anything.

When backward raises "modified by an inplace operation", the traceback still holds the backward
call's frame, and through its arguments the graph: every node backward had not reached yet keeps
its saved tensors. Unpacking one checks its version as backward does, so one walk of the graph
finds every saved tensor that is stale; backward read the one of the latest node first, and it must
be the message's. Its shape, dtype and versions say which save a recording must follow, as a first
pass would (:class:`~.records.StaleFinding`, with no place in the order of packs: of the saves
that fit and are then written to the stale version, as many memories as the graph held stale, the
one saved last), and the recording can stop once the diagnosis has what it reads. That spares the
replay everything after the write's module call, backward included.

Nothing is read where it could run code or be ambiguous: a custom Function (its backward is
Python), a saved tensor with unpack hooks (a checkpoint would recompute), stale tensors on two
devices, a list of saved tensors holding the stale one, a graph of more nodes than a walk may meet
(``torch_facts.GRAPH_WALK_LIMIT``: wrappers on a long chain crash its teardown). Then there is no
finding, and the replay records as it would without one. One case stays out of reach: a save of
the same shape and versions, written the same way, in a branch the loss does not depend on; the
recording would count it among those it follows.
"""

from __future__ import annotations

import re
import types
from typing import Any

import torch
from torch.autograd.function import BackwardCFunction

from .records import StaleFinding
from .torch_facts import GRAPH_WALK_LIMIT, storage_key

# "[torch.FloatTensor [32, 16]], which is output 0 of Elu1, is at version 2; expected version 1 instead"
_STALE = re.compile(
    r"\[torch\.[\w.]*Tensor \[(?P<shape>[\d, ]*)\]\].* is at version (?P<current>\d+); "
    r"expected version (?P<saved>\d+) instead"
)
_ENGINE: types.CodeType | None = getattr(
    getattr(torch.autograd.graph, "_engine_run_backward", None), "__code__", None
)
# each node type's saved tensors, by attribute name: _saved_X unpacks (and checks), _raw_saved_X does not
_SAVED: dict[type, tuple[tuple[str, str], ...]] = {}


def stale_in_failed_run(error: BaseException) -> StaleFinding | None:
    """The stale saved tensor of ``error`` as its own graph shows it, or None (see the module docstring)."""
    said = _versions(str(error))
    roots = _backward_roots(error)
    if said is None or roots is None:
        return None
    found: list[tuple[Any, torch.Tensor, tuple[str, int, int]]] = []  # node, tensor, its versions
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, BackwardCFunction) or len(seen) > GRAPH_WALK_LIMIT:
            return None
        for name, raw_name in _saved_tensors(type(node)):
            live = _live(getattr(node, raw_name))
            if live is None:
                return None
            if not live:
                continue
            try:
                getattr(node, name)  # the version check backward makes
            except RuntimeError as refused:
                versions = _versions(str(refused))
                if versions is None or len(live) != 1:
                    return None  # another failure, or a list: which of its tensors is stale is unknown
                found.append((node, live[0], versions))
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    if not found or len({tensor.device for _, tensor, _ in found}) != 1:
        return None  # backward runs one queue per device, in no order we can tell across them
    # backward runs the nodes of one device in the reverse of the order they were made (each needs
    # only later ones), so the node it read stale first is the latest of them: the message's
    node, tensor, versions = max(found, key=lambda item: item[0]._sequence_nr())
    if versions != said:
        return None  # not the tensor the message is about
    # saves that fit it in shape and versions, of other memories: one bug in several blocks
    fitting = {storage_key(t) for _, t, theirs in found if theirs == said}
    _, current, saved_version = said
    return StaleFinding(
        index=-1,
        shape=tuple(int(size) for size in tensor.shape),
        dtype=tensor.dtype,
        saved_version=saved_version,
        current_version=current,
        node_name=node.name(),
        custom_function=False,
        function_forward=None,
        checkpoint=False,
        fitting=len(fitting),
    )


def _live(raw: Any) -> list[torch.Tensor] | None:
    """The tensors a node still holds under one saved attribute (none once backward ran it), or None
    where reading them is not safe: unpack hooks would run (a checkpoint recomputes), or this torch's
    saved tensors do not show their data."""
    live: list[torch.Tensor] = []
    for saved in raw if isinstance(raw, (list, tuple)) else (raw,):
        if saved is None:
            continue
        if getattr(saved, "unpack_hook", True) is not None:
            return None
        if not hasattr(saved, "data"):
            return None
        data = saved.data
        if isinstance(data, torch.Tensor):  # None: released
            live.append(data)
    return live


def _versions(message: str) -> tuple[str, int, int] | None:
    found = _STALE.search(message)
    return None if found is None else (found["shape"], int(found["current"]), int(found["saved"]))


def _backward_roots(error: BaseException) -> list[Any] | None:
    """The nodes the failing backward call started from: the innermost engine call's arguments."""
    if _ENGINE is None:
        return None
    outputs = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is _ENGINE:
            outputs = tb.tb_frame.f_locals.get("t_outputs")
        tb = tb.tb_next
    if not isinstance(outputs, (list, tuple)):
        return None
    roots = []
    for t in outputs:
        node = t.node if isinstance(t, torch.autograd.graph.GradientEdge) else getattr(t, "grad_fn", None)
        if node is not None:
            roots.append(node)
    return roots or None


def _saved_tensors(kind: type) -> tuple[tuple[str, str], ...]:
    """``(_saved_X, _raw_saved_X)`` for each tensor (or list of tensors) nodes of ``kind`` save."""
    names = _SAVED.get(kind)
    if names is None:
        attributes = set(dir(kind))
        saved = sorted(a for a in attributes if a.startswith("_saved_") and "_raw" + a in attributes)
        names = _SAVED[kind] = tuple((a, "_raw" + a) for a in saved)
    return names
