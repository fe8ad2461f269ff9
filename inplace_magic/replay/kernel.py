"""Re-execute cells of a live kernel in the kernel's own namespace, then put the kernel back.

This is the replay stage of the notebook face: the cells' code as the kernel compiled it, the
state the first of them started from (random states, generator objects, iterator positions), a
time limit derived from how long they first took, and an undo log plus snapshots that leave the
kernel exactly as the failed run left it. What runs *during* the re-execution (the recorder, the
diagnosis) is the caller's: :func:`replay_in_kernel` only hands it a ``rerun`` callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Protocol, TypeVar

from .celldeps import hides_names, names_defined, names_reached, names_read
from .cells import Cell
from .run import RandomState
from .streams import Streams
from .time_limit import TimeLimitExceeded, time_limit
from .undo import DataAssignments, ObjectSnapshot, WriteLog, deferred_interrupts

MAX_WINDOW = 8  # a widened replay never runs more than this many cells

T = TypeVar("T")
Rerun = Callable[[], BaseException | None]


@dataclass
class KernelRerun:
    """The ``rerun`` :func:`replay_in_kernel` hands its caller, with the undo log of tensor writes. A
    recorder given ``undo=rerun.undo`` shows the log every op from its own dispatch mode (one Python
    dispatch per op for both); without one the log is a dispatch mode of its own around the cells."""

    run: Rerun
    undo: WriteLog

    def __call__(self) -> BaseException | None:
        return self.run()


@dataclass
class CellStart:
    """What a cell started from, taken before it ran, and how long it then took."""

    random: RandomState
    streams: Streams | None = None  # None: not taken
    seconds: float | None = None  # None: still running, or not measured
    failed: bool = False  # the cell raised when it ran

    @classmethod
    def take(cls, namespace: dict[str, Any], skip: frozenset[str]) -> CellStart:
        return cls(RandomState.capture(), Streams.capture(namespace, skip))


class KernelCells(Protocol):
    """What the replay needs to know about the cells a kernel ran (the notebook face's cell map)."""

    ids: dict[int, str]

    def cell_of(self, filename: str) -> tuple[int, str | None] | None: ...

    def cell_code(self, number: int) -> tuple[str, str] | None: ...

    def earlier_numbers(self, before: int, limit: int) -> list[int]: ...

    def session_cells(self) -> list[Cell]: ...


@dataclass(frozen=True)
class CellCode:
    number: int  # In[number]
    transformed: str  # the code the kernel ran, after IPython's input transformers
    filename: str  # the kernel's code name for it: frames of the replay map to the same cell


@dataclass
class FailedCell:
    """What to replay: cells in execution order (the failing one last), the state the first of
    them started from (None: not captured) and how long they took to run up to the error."""

    cells: list[CellCode]
    start: CellStart | None
    first_run_s: float | None = None

    @property
    def label(self) -> str:
        first, last = self.cells[0].number, self.cells[-1].number
        return f"In[{last}]" if first == last else f"In[{first}] to In[{last}]"


def widened(window: FailedCell, cells: KernelCells, starts: Mapping[int, CellStart]) -> FailedCell | None:
    """``window`` with the earlier cells it reads names from (all cells between, as they ran)."""
    first = window.cells[0].number
    reads = set().union(*(names_read(c.transformed) for c in window.cells))
    earlier: list[CellCode] = []
    for number in cells.earlier_numbers(first, MAX_WINDOW - len(window.cells)):
        code = cells.cell_code(number)
        if code is None or "get_ipython()" in code[0]:
            return None  # a magic (%reset, %run, ...) is no code to replay behind the user's back
        start = starts.get(number)
        if start is not None and start.failed:
            # a replay from here would raise that cell's error again before it reached the failing
            # one, and tell nothing of it: the usual notebook runs a failing cell, then %%gradcheck
            # on it, and each diagnosis replayed the session's cells up to there for nothing
            return None
        earlier.insert(0, CellCode(number, *code))
        if names_defined(code[0]) & reads:
            seconds = [getattr(starts.get(c.number), "seconds", None) for c in earlier]
            known = [s for s in (*seconds, window.first_run_s) if s is not None]
            return FailedCell(earlier + window.cells, starts.get(number), sum(known) if known else None)
    return None


def compile_like_kernel(shell: Any, transformed: str, filename: str) -> CodeType:
    """The cell as one code object, with the shell's AST transformers and ``__future__`` flags."""
    tree = shell.compile.ast_parse(transformed, filename=filename)
    tree = shell.transform_ast(tree)
    code: CodeType = shell.compile(tree, filename, "exec")
    return code


def hidden_names(shell: Any) -> frozenset[str]:
    """IPython's own bookkeeping (In, Out, _oh, _i1, ...): never rebound by a replay, and often large."""
    hidden = getattr(shell, "user_ns_hidden", {})
    names = shell.user_ns.keys()
    return frozenset(names & hidden.keys()) | _underscored(names)


_UNDERSCORED: list[tuple[frozenset[str], frozenset[str]]] = []  # the last names asked, and theirs


def _underscored(names: Any) -> frozenset[str]:
    """The names that start with an underscore. A session keeps a few per cell for good (_i57,
    _57), and this is asked before every cell and twice per diagnosis: a test of every name grew
    with the session, so only the names new since the last call are tested (the rest in C)."""
    if _UNDERSCORED:
        before, found = _UNDERSCORED[0]
        if names == before:
            return found
        new = names - before
        found = (found & names) | frozenset(name for name in new if name.startswith("_"))
    else:
        found = frozenset(name for name in names if name.startswith("_"))
    _UNDERSCORED[:] = [(frozenset(names), found)]
    return found


@dataclass
class ReplayReport:
    """What a replay could not do as asked, for the note on the user's error."""

    not_rewound: list[str] = field(default_factory=list)  # streams the replay read from elsewhere
    snapshot_complete: bool = True
    runs: int = 0  # how many times the cells were re-executed (a second time: see pipeline.core.replay)


def _below(namespace: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The part of the namespace the replayed cells reach: a stream below other names is not read."""
    return {name: namespace[name] for name in names if name in namespace}


@dataclass
class Reach:
    """What a replay of a window reaches in the namespace, and the streams found below it. Taken once
    for both the check before the replay (:func:`would_advance`) and the replay itself, which follows
    it with nothing run between: each walk of the namespace costs a diagnosis as much as it costs the
    cell it is taken before (a third of a millisecond on a small model's session)."""

    reached: set[str]
    roots: set[str] | None  # None: a magic may reach names no source shows, so the snapshot walks all
    streams: Streams  # below ``roots`` (the whole namespace where that is None)

    @classmethod
    def of(cls, shell: Any, window: FailedCell) -> Reach:
        sources = [c.transformed for c in window.cells]
        namespace = shell.user_ns
        reached = names_reached(sources, namespace)
        roots = None if hides_names(sources) else reached
        below = namespace if roots is None else _below(namespace, roots)
        return cls(reached, roots, Streams.capture(below, hidden_names(shell)))


def would_advance(shell: Any, window: FailedCell, reach: Reach | None = None) -> list[str]:
    """The streams ``window`` reaches that a replay would move on for good (a generator, ...)."""
    reach = reach if reach is not None else Reach.of(shell, window)
    if reach.roots is None:
        # taken over the whole namespace, a stream held by a name the cells do not read may be met
        # there first and then not be counted as reached: the check walks below the read names alone
        streams = Streams.capture(_below(shell.user_ns, reach.reached), hidden_names(shell))
        return streams.cannot_rewind(reach.reached)
    return reach.streams.cannot_rewind(reach.reached)


def replay_in_kernel(
    shell: Any,
    window: FailedCell,
    under: Callable[[KernelRerun], T],
    progress: AbstractContextManager[Any] | None = None,
    *,
    seconds: float | None = None,
    report: ReplayReport | None = None,
    reach: Reach | None = None,
) -> T:
    """Call ``under(rerun)``, where ``rerun()`` re-executes ``window`` in the kernel's namespace
    and returns the exception it raised (or None); afterwards every tensor, name, object, random
    state, generator object and iterator position the re-execution touched is put back as the failed
    run left it, even on Ctrl-C or when the re-execution runs past ``seconds``
    (:class:`~.time_limit.TimeLimitExceeded` is then raised out of here).

    A recorder around ``rerun()`` should be given ``undo=rerun.undo`` (:class:`KernelRerun`): the undo
    log's own mode would otherwise sit above it and its copies show up in the trace. A second
    ``rerun()`` first puts the kernel back as the failed run left it. ``reach`` is what
    :meth:`Reach.of` found just before, with nothing run since (taken here when None).
    """
    from IPython.utils.capture import capture_output

    report = report if report is not None else ReplayReport()
    codes = [compile_like_kernel(shell, c.transformed, c.filename) for c in window.cells]
    namespace = shell.user_ns
    hidden = hidden_names(shell)
    after = RandomState.capture()  # what the failed run left: the kernel goes back to it
    # below the names the cells reach, unless a magic may reach names no source shows: then all
    reach = reach if reach is not None else Reach.of(shell, window)
    reached, roots, streams = reach.reached, reach.roots, reach.streams
    snapshot = ObjectSnapshot.take(namespace, skip=hidden, roots=roots)
    report.snapshot_complete = snapshot.complete
    writes, assignments = WriteLog(), DataAssignments()

    def put_back() -> None:
        assignments.restore()  # first: the undo log's writes go to the memory put back here
        writes.restore()
        snapshot.restore()
        streams.put_back()
        after.restore()

    def rerun() -> BaseException | None:
        if report.runs:
            with deferred_interrupts():
                put_back()
        report.runs += 1
        if window.start is not None:
            # same dropout masks and random batches as the failed run; the states stand as the
            # failed run left them (taken as ``after``, or put back to it)
            window.start.random.restore(now=after)
        start = window.start.streams if window.start is not None else None
        # the same numbers and batches the cells first took
        report.not_rewound = streams.rewind_to(start, reached)
        try:
            # the replay's prints and displays repeat the failed run's: hidden
            # the undo log sees every op: through the recorder's mode when one was given it, else its own
            with (
                capture_output(stdout=True, stderr=True, display=True),
                time_limit(seconds),
                nullcontext() if writes.watched else writes,
            ):
                for code in codes:
                    exec(code, shell.user_global_ns, namespace)
        except (KeyboardInterrupt, TimeLimitExceeded):
            raise
        except BaseException as error:  # the user's code failing again is the expected result
            return error
        return None

    try:
        with progress or nullcontext(), assignments:
            return under(KernelRerun(rerun, writes))
    finally:
        with deferred_interrupts():
            put_back()
