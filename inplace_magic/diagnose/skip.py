"""Find the skip connection or branch an in-place write breaks, on the recorded forward dataflow.

Two shapes occur in real code:

* **fan-out** — the overwritten value feeds the saver's branch and the writer's branch, which meet
  again later (``s = shortcut(h); out = act_(h); conv(out) + s``). The merge is the earliest op that
  descends from both; the split is the value's producer.
* **in-place merge** — the writer *is* the merge: ``x += residual`` writes a saved activation while
  adding a value that reached it by another path. The split is where that other value was produced.

A merge that happens only at a scalar (the loss) is not a skip; a branch that only feeds the writer
(``attn.masked_fill_(isnan(attn), 0)``) is not one either.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..record.frames import Frame, is_user_file
from ..record.records import OpRecord, SaveRecord, Trace
from .diagnosis import BranchStep, Location, Skip
from .locations import Locator
from .module_names import ModuleNamer

# ops that read only a tensor's metadata, not its values
_METADATA_ONLY = frozenset(
    {"empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "size", "stride"}
)
_MERGE_KINDS = {
    "add": "add",
    "add_": "add",
    "sub": "add",
    "sub_": "add",
    "cat": "cat",
    "stack": "cat",
    "mul": "mul",
    "mul_": "mul",
    "div": "mul",
    "div_": "mul",
    "addcmul": "mul",
    "where": "select",
    "matmul": "matmul",
    "mm": "matmul",
    "bmm": "matmul",
    "addmm": "matmul",
}
_MAX_STEPS = 8


def _aten_name(op: OpRecord) -> str:
    return op.op.split(".")[1] if op.op.startswith("aten.") else op.op


class _Graph:
    """Forward dataflow between the ops of the failing forward pass."""

    def __init__(self, trace: Trace, start: int, stop: int) -> None:
        self.trace = trace
        self.start, self.stop = start, stop
        self.children: dict[int, list[int]] = {}
        for op in trace.ops[start:stop]:
            if not self.in_graph(op):
                continue
            for producer in op.producers:
                if producer is not None and producer >= start:
                    self.children.setdefault(producer, []).append(op.seq)

    def in_graph(self, op: OpRecord) -> bool:
        return not op.backward and op.optimizer is None

    def descendants(self, seq: int) -> dict[int, int]:
        """Descendants of ``seq`` mapped to their parent on a shortest path (BFS)."""
        parent: dict[int, int] = {}
        queue = deque([seq])
        while queue:
            current = queue.popleft()
            for child in self.children.get(current, ()):
                if child not in parent and child < self.stop:
                    parent[child] = current
                    queue.append(child)
        return parent

    def ancestors(self, seq: int) -> set[int]:
        seen: set[int] = set()
        stack = [seq]
        while stack:
            op = self.trace.op(stack.pop())
            if op is None:
                continue
            for producer in op.producers:
                if producer is not None and producer >= self.start and producer not in seen:
                    seen.add(producer)
                    stack.append(producer)
        return seen

    def path(self, parents: dict[int, int], origin: int, target: int) -> list[int]:
        steps = [target]
        while steps[-1] != origin and steps[-1] in parents and len(steps) < 200:
            steps.append(parents[steps[-1]])
        return list(reversed(steps))


def _window(trace: Trace, writer: OpRecord) -> tuple[int, int]:
    """From the last backward before the writer to the first backward after it: one forward pass."""
    start = 0
    for op in reversed(trace.ops[: writer.seq]):
        if op.backward or op.optimizer is not None:
            start = op.seq + 1
            break
    stop = len(trace.ops)
    for op in trace.ops[writer.seq + 1 :]:
        if op.backward:
            stop = op.seq
            break
    return start, stop


def _is_scalar(op: OpRecord) -> bool:
    shape = op.output_shape
    if shape is None:
        return True
    numel = 1
    for size in shape:
        numel *= size
    return numel <= 1


def _steps(trace: Trace, seqs: Iterable[int], locator: Locator, names: ModuleNamer) -> tuple[BranchStep, ...]:
    out = []
    for seq in list(seqs)[:_MAX_STEPS]:
        op = trace.ops[seq]
        out.append(
            BranchStep(
                op=op.op,
                module=names.path(op.modules),
                location=locator.location(op.frames[0] if op.frames else None),
            )
        )
    return tuple(out)


def find_skip(
    trace: Trace,
    save: SaveRecord,
    saver: OpRecord | None,
    writer: OpRecord,
    locator: Locator,
    names: ModuleNamer,
) -> Skip | None:  # type: ignore[no-untyped-def]
    """The skip connection or branch that the write in ``writer`` breaks, or None."""
    start, stop = _window(trace, writer)
    graph = _Graph(trace, start, stop)
    value = (save.tensor.storage, save.tensor.version)
    split = save.producer if save.producer is not None and save.producer >= start else None
    writer_desc = graph.descendants(writer.seq)

    # fan-out: another consumer of the value, other than the writer, whose branch meets the writer's
    best: tuple[int, int, dict[int, int]] | None = None  # (merge, consumer, consumer parents)
    for op in trace.ops[max(start, (split or start)) : writer.seq]:
        if not graph.in_graph(op) or op.is_view or _aten_name(op) in _METADATA_ONLY:
            continue
        if value not in op.inputs:
            continue
        consumer_desc = graph.descendants(op.seq)
        if writer.seq in consumer_desc:
            continue  # it feeds the writer (a mask, a statistic): not a separate branch
        common = [s for s in consumer_desc if s in writer_desc and not _is_scalar(trace.ops[s])]
        if common:
            merge = min(common)
            if best is None or merge < best[0]:
                best = (merge, op.seq, consumer_desc)
    if best is not None:
        merge, consumer, consumer_desc = best
        saver_branch = [consumer, *graph.path(consumer_desc, consumer, merge)[1:]]
        writer_branch = [writer.seq, *graph.path(writer_desc, writer.seq, merge)[1:]]
        return _skip(trace, split, merge, saver_branch, writer_branch, locator, names)

    # in-place merge: the writer adds a value that reached it by another path
    if saver is None or _is_scalar(writer):
        return None
    written = {(w.storage, w.version_before) for w in writer.writes}
    value_ancestors = (graph.ancestors(split) | {split}) if split is not None else set()
    for key, producer in zip(writer.inputs, writer.producers, strict=True):
        if key in written or producer is None or producer < start:
            continue
        other_ancestors = graph.ancestors(producer) | {producer}
        if split is not None and split in other_ancestors:
            continue  # computed from the overwritten value itself (a mask): no second path
        if producer in value_ancestors or other_ancestors & value_ancestors:
            writer_branch = [writer.seq]
            return _skip(trace, producer, writer.seq, [producer, writer.seq], writer_branch, locator, names)
    return None


def _skip(
    trace: Trace,
    split: int | None,
    merge: int,
    saver_branch: list[int],
    writer_branch: list[int],
    locator: Locator,
    names: ModuleNamer,
) -> Skip:  # type: ignore[no-untyped-def]
    merge_op = trace.ops[merge]
    source_op = trace.op(split)
    return Skip(
        source=_source_location(source_op, merge_op, locator),
        source_op=source_op.op if source_op else None,
        merge=locator.location(merge_op.frames[0] if merge_op.frames else None),
        merge_op=merge_op.op,
        merge_kind=_MERGE_KINDS.get(_aten_name(merge_op), _aten_name(merge_op)),
        merge_module=names.path(merge_op.modules),
        saver_branch=_steps(trace, saver_branch, locator, names),
        writer_branch=_steps(trace, writer_branch, locator, names),
    )


def _source_location(source: OpRecord | None, merge: OpRecord, locator: Locator) -> Location | None:
    """Where the branched value enters: its producer's line, or the ``def forward`` of the block
    that merges it when the value came in from outside that block (the block's input is the skip)."""
    if source is None:
        return None
    block = merge.modules[-1] if merge.modules else None
    if block is not None and not any(m is block for m in source.modules):
        code = getattr(type(block).forward, "__code__", None)
        if code is not None and is_user_file(code.co_filename):
            return locator.location(Frame(code.co_filename, code.co_firstlineno, code.co_name))
    return locator.location(source.frames[0]) if source.frames else None
