"""Find the skip connection or branch an in-place write breaks, on the recorded forward dataflow.

The overwritten value V (the saved tensor at its saved version) is *branched* when two of its
consumers lead, by separate paths, to one op: the **merge**. Every form people write reduces to two
shapes of that graph:

* **two consumers of V meet** — the write is one consumer (``s = shortcut(h); out = act_(h);
  conv(out) + s``), or the merge itself (``h += ff(h)``, ``x *= gate``, ``h.copy_(h + y)``), or the
  merge happened before the write (``y = conv(x) + x; x.add_(1)``: the write comes after it);
* **the write merges V with a value that reached it by another path** from a common ancestor
  (``out = relu(conv(x)); out += x``, ``feats[i - 1] += F.interpolate(feats[i])``, ``acc += o``).

Not a branch: a merge into a single number (the loss), a path that carries no differentiable
non-scalar value into the merge (a mask such as ``isnan(attn)``, a statistic such as ``x.norm()``),
and two paths that share no op.

``writer_position`` says where the write sits with respect to the merge: ``before`` (on a branch),
``inside`` (it is the merge, or stores the merge's result into V) or ``after``. ``from`` is where the
branched value is produced, or where it enters the merging block (its ``def forward``, or the line
that captured it, ``identity = x``).
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import textwrap
from collections import deque
from collections.abc import Iterable

from ..record.frames import Frame, is_code_file
from ..record.records import OpRecord, Region, SaveRecord, Trace
from .diagnosis import BranchStep, Location, Skip, WriterPosition
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
    "copy_": "add",
    "cat": "cat",
    "stack": "cat",
    "mul": "mul",
    "mul_": "mul",
    "div": "mul",
    "div_": "mul",
    "addcmul": "mul",
    "addcmul_": "mul",
    "where": "select",
    "matmul": "matmul",
    "mm": "matmul",
    "bmm": "matmul",
    "addmm": "matmul",
}
_MAX_STEPS = 8
_MAX_CONSUMERS = 16


def _aten_name(op: OpRecord) -> str:
    return op.op.split(".")[1] if op.op.startswith("aten.") else op.op.rsplit(".", 1)[-1]


def _numel(shape: tuple[int, ...] | None) -> int:
    if shape is None:
        return 1
    numel = 1
    for size in shape:
        numel *= size if size >= 0 else 2  # a ragged dimension of a nested tensor holds many
    return numel


def _same_elements(a: Region | None, b: Region | None) -> bool:
    """Two views cover the same elements of their storage (a transpose or a reshape of one another
    does; ``h[t]`` and ``h[t + 1]``, or ``b[:, 0]`` and ``b[:, 1]``, do not). A tensor that is no view
    (None) covers its whole storage, and is taken to be the value any view of it is part of."""
    if a is None or b is None:
        return True

    def span(region: Region) -> tuple[int, int, int]:
        offset, sizes, strides = region
        numel = _numel(sizes)
        last = offset + sum((size - 1) * abs(stride) for size, stride in zip(sizes, strides, strict=True))
        return offset, numel, last

    return span(a) == span(b)


def _is_scalar(op: OpRecord) -> bool:
    return _numel(op.output_shape) <= 1


class _Graph:
    """Forward dataflow between the ops of the failing forward pass."""

    def __init__(self, trace: Trace, start: int, stop: int, extra: OpRecord | None = None) -> None:
        self.trace = trace
        self.start, self.stop = start, stop
        self.extra = extra  # a call that never reached the dispatcher (an out= call autograd refused)
        self.children: dict[int, list[int]] = {}
        ops = [*trace.ops[start:stop], *([extra] if extra is not None else [])]
        for op in ops:
            if not self.in_graph(op):
                continue
            for producer in op.producers:
                if producer is not None and producer >= start:
                    self.children.setdefault(producer, []).append(op.seq)

    def op(self, seq: int) -> OpRecord:
        if self.extra is not None and seq == self.extra.seq:
            return self.extra
        return self.trace.ops[seq]

    @staticmethod
    def in_graph(op: OpRecord) -> bool:
        return not op.backward and op.optimizer is None

    def reach(self, seq: int) -> dict[int, int]:
        """``seq`` and its descendants, each mapped to its parent on a shortest path (BFS)."""
        parent: dict[int, int] = {seq: seq}
        queue = deque([seq])
        while queue:
            current = queue.popleft()
            for child in self.children.get(current, ()):
                if child not in parent and (child < self.stop or child == getattr(self.extra, "seq", -1)):
                    parent[child] = current
                    queue.append(child)
        return parent

    def ancestors(self, seq: int) -> set[int]:
        seen: set[int] = set()
        stack = [seq]
        while stack:
            current = stack.pop()
            if not 0 <= current < len(self.trace.ops) and current != getattr(self.extra, "seq", -1):
                continue
            for producer in self.op(current).producers:
                if producer is not None and producer >= self.start and producer not in seen:
                    seen.add(producer)
                    stack.append(producer)
        return seen

    def path(self, parents: dict[int, int], origin: int, target: int) -> list[int]:
        steps = [target]
        while steps[-1] != origin and steps[-1] in parents and len(steps) < 200:
            steps.append(parents[steps[-1]])
        return list(reversed(steps))

    def carries_branch(self, producer: int | None) -> bool:
        """The value ``producer`` made can carry a branch: differentiable and not a single number."""
        if producer is None:
            return True  # a value from before the window (a block input): a tensor like any other
        op = self.op(producer)
        return op.float_output and _numel(op.output_shape) > 1


def _window(trace: Trace, writer: OpRecord) -> tuple[int, int]:
    """From the last backward before the writer to the first backward after it: one forward pass."""
    start = 0
    for op in reversed(trace.ops[: min(writer.seq, len(trace.ops))]):
        if op.backward or op.optimizer is not None:
            start = op.seq + 1
            break
    stop = len(trace.ops)
    for op in trace.ops[writer.seq + 1 :]:
        if op.backward:
            stop = op.seq
            break
    return start, stop


def _steps(
    graph: _Graph, seqs: Iterable[int], locator: Locator, names: ModuleNamer
) -> tuple[BranchStep, ...]:
    out = []
    for seq in list(seqs)[:_MAX_STEPS]:
        op = graph.op(seq)
        out.append(
            BranchStep(
                op=op.op,
                module=names.path(op.modules),
                location=locator.location(op.frames[0] if op.frames else None),
            )
        )
    return tuple(out)


class _Search:
    def __init__(self, trace: Trace, save: SaveRecord, saver: OpRecord | None, writer: OpRecord) -> None:
        start, stop = _window(trace, writer)
        self.trace, self.writer, self.saver = trace, writer, saver
        extra = writer if writer.seq >= len(trace.ops) else None
        self.graph = _Graph(trace, start, stop, extra)
        self.start = start
        self.value = (save.tensor.storage, save.tensor.version)
        self.split = save.producer if save.producer is not None and save.producer >= start else None
        self.written = {(w.storage, w.version_before) for w in writer.writes}
        # the write continues V's dataflow only when it writes V itself: ``h[t + 1] = f(h[t])``
        # writes another slice of the buffer that holds the saved ``h[t]``
        saved = save.tensor.region
        self.writes_value = any(
            w.storage == save.tensor.storage and _same_elements(w.region, saved) for w in writer.writes
        )

    def consumers(self) -> list[int]:
        """Ops of the forward that read V (the write among them), up to the write."""
        found = []
        first = max(self.start, self.split if self.split is not None else self.start)
        for op in self.trace.ops[first : self.writer.seq]:
            if not self.graph.in_graph(op) or op.is_view or _aten_name(op) in _METADATA_ONLY:
                continue
            if self.value in op.inputs:
                found.append(op.seq)
        if self.writes_value:
            found.append(self.writer.seq)
        return found[-_MAX_CONSUMERS:]

    def _entries(self, merge: int, branch: dict[int, int]) -> list[int]:
        """Inputs of ``merge`` through which a differentiable value of ``branch`` arrives."""
        op = self.graph.op(merge)
        out = []
        for i, (key, producer) in enumerate(zip(op.inputs, op.producers, strict=True)):
            if key == self.value and merge in branch and branch[merge] == merge:
                out.append(i)  # V itself, read by the branch's first op
            elif producer is not None and producer in branch and self.graph.carries_branch(producer):
                out.append(i)
        return out

    def _valid_merge(self, merge: int, a: dict[int, int], b: dict[int, int]) -> bool:
        op = self.graph.op(merge)
        if _is_scalar(op) or not self.graph.in_graph(op):
            return False
        from_a, from_b = self._entries(merge, a), self._entries(merge, b)
        return any(i != j for i in from_a for j in from_b)

    def _relevant(self, pair: tuple[int, int], merge: int, reaches: dict[int, dict[int, int]]) -> bool:
        """The branch matters to this error: the write is on it, or the saver is."""
        if self.writer.seq in pair:
            return True
        saver = self.saver.seq if self.saver is not None else None
        return saver is not None and saver <= merge and any(saver in reaches[c] for c in pair)

    def two_consumers(self) -> tuple[int, tuple[int, int]] | None:
        """The earliest merge of two consumers of V: (merge, (consumer a, consumer b))."""
        consumers = self.consumers()
        reaches = {c: self.graph.reach(c) for c in consumers}
        merged_by_write = self._merged_by_write(consumers, reaches)
        if merged_by_write is not None:
            return merged_by_write
        best: tuple[int, tuple[int, int]] | None = None
        for i, a in enumerate(consumers):
            for b in consumers[i + 1 :]:
                common = sorted(set(reaches[a]) & set(reaches[b]))
                for merge in common:
                    if best is not None and merge >= best[0]:
                        break
                    if self._valid_merge(merge, reaches[a], reaches[b]) and self._relevant(
                        (a, b), merge, reaches
                    ):
                        best = (merge, (a, b))
                        break
        return best

    def _merged_by_write(
        self, consumers: list[int], reaches: dict[int, dict[int, int]]
    ) -> tuple[int, tuple[int, int]] | None:
        """The write merges V with a value computed from V (``h += f(h)``, an FPN's ``c2 += top``):
        that is the branch it breaks, also when V's branches met earlier on the way (the two convs of
        a library's residual block that ``top`` came through). The consumer on the saver's path is
        preferred."""
        writer = self.writer.seq
        if writer not in reaches:
            return None
        meeting = [
            c
            for c in consumers
            if c != writer and writer in reaches[c] and self._valid_merge(writer, reaches[c], reaches[writer])
        ]
        if not meeting:
            return None
        saver = self.saver.seq if self.saver is not None else None
        other = next((c for c in meeting if saver in reaches[c]), meeting[0])
        return writer, (other, writer)

    def other_path(self) -> int | None:
        """The producer of a value the write merges into V that shares an ancestor with V."""
        writer = self.writer
        if _is_scalar(writer) or not self.writes_value:
            return None
        split = self.split
        value_ancestors = (self.graph.ancestors(split) | {split}) if split is not None else set()
        for key, producer in zip(writer.inputs, writer.producers, strict=True):
            if key in self.written or key == self.value or producer is None or producer < self.start:
                continue
            if not self.graph.carries_branch(producer):
                continue
            other_ancestors = self.graph.ancestors(producer) | {producer}
            if split is not None and split in other_ancestors:
                continue  # computed from V itself: a consumer of V, found by two_consumers
            if producer in value_ancestors or other_ancestors & value_ancestors:
                return producer
        return None


def skip_decided(trace: Trace, save: SaveRecord, saver: OpRecord | None, writer: OpRecord) -> bool:
    """Whether :func:`find_skip` on a forward recorded only up to now gives the answer it gives on
    the whole forward. Dataflow only runs forward, so the earliest merge of two consumers of V found
    now is the earliest there will be; with fewer than two consumers there is none to find, and the
    other path reads only ops up to the write. Otherwise a merge may still come."""
    search = _Search(trace, save, saver, writer)
    return len(search.consumers()) < 2 or search.two_consumers() is not None


def find_skip(
    trace: Trace,
    save: SaveRecord,
    saver: OpRecord | None,
    writer: OpRecord,
    locator: Locator,
    names: ModuleNamer,
) -> Skip | None:
    """The skip connection or branch that the write in ``writer`` breaks, or None.

    ``writer`` may be a call that never reached the dispatcher (``torch.add(x, y, out=x)`` refused by
    autograd): its record then carries the next free seq.
    """
    search = _Search(trace, save, saver, writer)
    graph = search.graph
    found = search.two_consumers()
    if found is not None:
        merge, (a, b) = found
        reach_a, reach_b = graph.reach(a), graph.reach(b)
        branches = [[a, *graph.path(reach_a, a, merge)[1:]], [b, *graph.path(reach_b, b, merge)[1:]]]
        writer_branch = next((br for br in branches if br[0] == writer.seq), branches[1])
        saver_branch = branches[0] if writer_branch is branches[1] else branches[1]
        position: WriterPosition = "before" if merge > writer.seq else "inside"
        if merge < writer.seq and writer.seq not in graph.reach(merge):
            position = "after"
        return _skip(graph, search.split, merge, saver_branch, writer_branch, position, locator, names)
    other = search.other_path()
    if other is None:
        return None
    source = _branch_source(graph, other, writer)
    return _skip(graph, source, writer.seq, [other, writer.seq], [writer.seq], "inside", locator, names)


def _branch_source(graph: _Graph, producer: int, writer: OpRecord) -> int:
    """Where the merged-in value was made, leaving out ops on the merge's own line
    (``feats[i - 1] += F.interpolate(feats[i])``: the lateral's output, not the interpolation)."""
    line = writer.frames[:1]
    current = producer
    for _ in range(8):
        op = graph.op(current)
        # the same line in another call of the block (blocks.0 and blocks.1 run one forward) is not it
        if op.frames[:1] != line or op.modules != writer.modules:
            return current
        upstream = [p for p in op.producers if p is not None and p >= graph.start and graph.carries_branch(p)]
        if not upstream:
            return current
        current = upstream[0]
    return current


def _skip(
    graph: _Graph,
    split: int | None,
    merge: int,
    saver_branch: list[int],
    writer_branch: list[int],
    position: WriterPosition,
    locator: Locator,
    names: ModuleNamer,
) -> Skip:
    merge_op = graph.op(merge)
    source_op = graph.op(split) if split is not None else None
    source, source_stack = _source_location(source_op, merge_op, locator)
    return Skip(
        source=source,
        source_op=source_op.op if source_op else None,
        merge=locator.location(merge_op.frames[0] if merge_op.frames else None),
        merge_op=merge_op.op,
        merge_kind=_MERGE_KINDS.get(_aten_name(merge_op), _aten_name(merge_op)),
        merge_module=names.path(merge_op.modules),
        saver_branch=_steps(graph, saver_branch, locator, names),
        writer_branch=_steps(graph, writer_branch, locator, names),
        writer_position=position,
        merge_stack=locator.stack(merge_op.frames),
        source_stack=source_stack,
    )


def _source_location(
    source: OpRecord | None, merge: OpRecord, locator: Locator
) -> tuple[Location | None, tuple[Location, ...]]:
    """Where the branched value enters: its producer's line, or, when it came into the merging
    block from outside, the line of that block that captured it (``identity = x``) or its
    ``def forward``."""
    if source is None:
        return None, ()
    block = merge.modules[-1] if merge.modules else None
    if block is not None and not any(m is block for m in source.modules):
        code = getattr(type(block).forward, "__code__", None)
        if code is not None and is_code_file(code.co_filename):
            captured = _capture_line(code.co_filename, code.co_firstlineno, merge.frames[:1])
            frame = captured or Frame(code.co_filename, code.co_firstlineno, code.co_name)
            return locator.location(frame), ()
    if not source.frames:
        return None, ()
    return locator.location(source.frames[0]), locator.stack(source.frames)


def _capture_line(filename: str, first_line: int, merge_frames: tuple[Frame, ...]) -> Frame | None:
    """``identity = x`` before the merge in the block's forward, naming a value the merge reads."""
    if not merge_frames or merge_frames[0].filename != filename:
        return None
    lines = linecache.getlines(filename)
    if not lines or first_line > len(lines):
        return None
    captures, names_by_line = _function_facts(filename, first_line, tuple(lines))
    merge_line = merge_frames[0].lineno - first_line + 1
    read_at_merge = names_by_line.get(merge_line, frozenset())
    found = [line for line, target in captures if line < merge_line and target in read_at_merge]
    if not found:
        return None
    return Frame(filename, first_line + max(found) - 1, merge_frames[0].function)


@functools.lru_cache(maxsize=64)
def _function_facts(
    filename: str, first_line: int, lines: tuple[str, ...]
) -> tuple[tuple[tuple[int, str], ...], dict[int, frozenset[str]]]:
    """For the function starting at ``first_line`` (parsed once per text: tokenizing is the slow
    part): its alias assignments ``name = other`` as (line, name), and the names read on each line."""
    try:
        tree = ast.parse(textwrap.dedent("".join(inspect.getblock(list(lines[first_line - 1 :])))))
    except (SyntaxError, IndentationError, ValueError):
        return (), {}
    captures = tuple(
        (node.lineno, node.targets[0].id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Name)
    )
    names: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.setdefault(node.lineno, set()).add(node.id)
    return captures, {line: frozenset(found) for line, found in names.items()}
