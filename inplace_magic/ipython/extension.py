"""Everything ``%load_ext inplace_magic`` sets up on one shell: cell bookkeeping, the borrowed
exception hook, ``%gradcheck on|off`` and the run of a ``%%gradcheck`` cell.

The cell magic runs its body through ``shell.run_cell`` (with the outer cell's id and In[] number),
so display of the last expression, outputs, namespace effects and tracebacks are IPython's own; a
body that starts with another cell magic is run as that magic's cell (:mod:`.nested`).
Only an in-place autograd error is held back while the cell is replayed and diagnosed; then the
traceback, with a short note, and the report are shown, and the very same exception is raised
again so that "run all" stops as before. IPython shows it once: a one-shot handler of IPython's
public custom-exception hook swallows the second display of that one object.
"""

from __future__ import annotations

import bdb
import contextlib
import sys
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..lab.comm import LabChannel
from ..pipeline.kernel import (
    FixMode,
    Outcome,
    diagnose_failure,
    pending_fixes,
    report_internal_error,
    verify_fixes,
)
from ..record.family import member_of
from ..replay.kernel import MAX_WINDOW, CellCode, CellStart, FailedCell, hidden_names
from ..replay.run import RandomState
from .cellmap import CellMap
from .display import Shown, display_diagnosis, prompt_cell_names
from .exceptions import ExceptionHook, add_note
from .nested import InnerMagic
from .progress import Progress
from .warm_up import WarmUp

if TYPE_CHECKING:
    from ..panel.state import FixVerdict

# what this many recent cells started from is kept: a widened replay goes back no further
KEEP_STARTS = MAX_WINDOW


@dataclass
class Options:
    replay: bool = True
    fixes: FixMode = "verify"  # each fix re-executed in this kernel before it is called verified
    time_limit: float | None = None  # seconds for each replay; None: derived from the first run
    allow_advance: bool = False  # replay even what would move on a generator for good


@dataclass
class _Running:
    """A cell the kernel is running, as ``pre_run_cell`` saw it."""

    transformed: str
    filename: str
    number: int  # In[number]
    cell_id: str | None
    raw_cell: str
    started: float  # time.monotonic() when it started: how long the first run took, for the time limit


def _ours(error: BaseException) -> bool:
    """An error of the in-place family by its text, or one whose text is ours only when the replay
    finds the in-place write behind it (the pipeline then confirms it, or it is shown as raised)."""
    try:
        return member_of(error, confirmable=True) is not None
    except Exception:  # the user's __str__ raised: not a text of ours
        return False


def _header(raw_cell: str | None, line: str) -> str:
    """Commented copies of the lines down to ``%%gradcheck``: in front of the body, they keep its
    line numbers the cell's own. (Blank lines would not do: IPython strips leading blank lines.)"""
    if raw_cell is not None:
        lines = raw_cell.split("\n")
        for index, text in enumerate(lines):
            if text.strip():
                if text.lstrip().startswith("%%gradcheck"):
                    return "".join(f"# {above}".rstrip() + "\n" for above in lines[: index + 1])
                break
    return f"# %%gradcheck {line}".rstrip() + "\n"


class Extension:
    """Everything ``%load_ext inplace_magic`` sets up on one shell."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cellmap = CellMap(shell=shell)
        self.running: list[_Running] = []
        self.auto: Options | None = None
        self._auto_previous: ExceptionHook | None = None
        self._auto_handler: Any = None
        self._inner: tuple[int, str | None] | None = None  # set around the cell magic's own run
        self._inner_run: _Running | None = None
        self._quiet_previous: ExceptionHook | None = None
        self._quiet_handler: Any = None
        self._replaying = False  # cells a replay runs (a %%capture body) are not the user's
        self._start_failed = False  # said once
        # what each recent cell started from: a replay starts from the same numbers and batches
        self.starts: dict[int, CellStart] = {}
        # the JupyterLab sidebar; its autoDiagnose setting may switch `%gradcheck on|off` here
        self.lab = LabChannel(
            lambda: self.auto is not None, lambda on: self.switch("on" if on else "off", Options())
        )
        self.warm_up: WarmUp | None = None  # told when cells start and end, to wait for the user

    # -- lifecycle

    def load(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        if getattr(self.shell, "kernel", None) is not None:
            self.lab.open()

    def unload(self) -> None:
        if self.warm_up is not None and self.running:
            self.warm_up.cell_ended()  # the %unload_ext cell: its end is no longer heard here
        self.warm_up = None
        self.switch("off", Options())
        self.lab.close()
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(event, callback)
        magics = self.shell.magics_manager.magics
        for kind in ("line", "cell"):
            magics[kind].pop("gradcheck", None)

    # -- cell bookkeeping

    def pre_run_cell(self, info: Any) -> None:
        if self.warm_up is not None:
            self.warm_up.cell_started()  # it waits: the user's code has the interpreter to itself
        if self._replaying:
            return
        try:
            if self._inner is not None:
                number, cell_id = self._inner
            else:
                count = self.shell.execution_count
                number, cell_id = (count - 1 if info.store_history else count), info.cell_id
            transformed = getattr(info, "transformed_cell", None)
            if transformed is None:
                transformed = self.shell.transform_cell(info.raw_cell)
            filename = self.cellmap.code_name(info.raw_cell, transformed, number)
            raw = info.raw_cell if self._inner is None else None
            self.cellmap.record(filename, number, cell_id, raw, transformed)
            if self._inner is None:  # the body of a cell magic starts from the cell's own state
                self.starts[number] = self._start()
                for old in [n for n in self.starts if n <= number - KEEP_STARTS]:
                    del self.starts[old]
            run = _Running(transformed, filename, number, cell_id, info.raw_cell, time.monotonic())
            if self._inner is not None:
                self._inner_run = run
            self.running.append(run)
        except Exception as error:  # bookkeeping must never stop the user's cell
            print(f"inplace_magic: pre_run_cell failed ({type(error).__name__}: {error})", file=sys.stderr)

    def _start(self) -> CellStart:
        try:
            return CellStart.take(self.shell.user_ns, hidden_names(self.shell))
        except Exception as error:  # an object whose attributes raise: this cell's streams are unknown
            if not self._start_failed:
                self._start_failed = True
                print(f"inplace_magic: cannot read iterator positions ({error!r})", file=sys.stderr)
            return CellStart(RandomState.capture())

    def post_run_cell(self, result: Any) -> None:
        if self.warm_up is not None:
            self.warm_up.cell_ended()
        if self._replaying:
            return
        if self.running:
            run = self.running.pop()
            start = self.starts.get(run.number)
            if self._inner is None and start is not None:
                start.seconds = time.monotonic() - run.started
                start.failed = result is not None and not result.success
        if self._quiet_handler is not None and self._inner is None and not self.running:
            self._end_quiet()  # the one-shot handler was not used (the raise was caught in user code)

    # -- %gradcheck on|off

    def switch(self, mode: str | None, options: Options) -> None:
        if mode is None:
            print(f"%gradcheck is {'on' if self.auto is not None else 'off'}")
        elif mode == "on":
            if self.auto is None:
                self._auto_previous = ExceptionHook.current(self.shell)
                self.shell.set_custom_exc((RuntimeError, *self._auto_previous.types), self._on_error)
                self._auto_handler = self.shell.CustomTB
            self.auto = options
        elif self.auto is not None:
            if self.shell.CustomTB is self._auto_handler and self._auto_previous is not None:
                self._auto_previous.put_back(self.shell)
            self.auto = None
            self._auto_previous = self._auto_handler = None

    def _on_error(self, shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
        previous = self._auto_previous or ExceptionHook((), None)
        try:
            if self.auto is None or self._replaying or not self.running or not _ours(value):
                previous.show(shell, etype, value, tb, tb_offset)
                return
            run = self.running[-1]
            cell = CellCode(run.number, run.transformed, run.filename)
            window = FailedCell([cell], self.starts.get(run.number), time.monotonic() - run.started)
            self._diagnose_and_show(value, window, self.auto)
        except Exception:  # IPython drops a handler that raises; the user's error must still show
            shell.showtraceback((etype, value, tb), running_compiled_code=True)

    # -- %%gradcheck

    def run_cell_checked(self, line: str, body: str, options: Options) -> None:
        shell = self.shell
        outer = self.running[-1] if self.running else None
        number = outer.number if outer is not None else shell.execution_count - 1
        cell_id = outer.cell_id if outer is not None else None
        header = _header(outer.raw_cell if outer is not None else None, line)
        inner = InnerMagic.of(body)
        source = inner.source(header) if inner is not None else header + body
        held: list[tuple[BaseException, float]] = []  # the error and when it was raised
        nested: list[tuple[BaseException, float]] = []  # ... by a cell the body ran (%%capture's)
        depth = len(self.running) + 1  # the body's own run; deeper runs are the body's cells
        saved = ExceptionHook.current(shell)

        def hold(shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any = None) -> Any:
            if not _ours(value):
                return saved.show(shell, etype, value, tb, tb_offset)
            if len(self.running) <= depth:
                held.append((value, time.monotonic()))  # shown after the replay, with its note
                return None
            nested.append((value, time.monotonic()))  # that cell's magic decides what shows it
            return saved.show(shell, etype, value, tb, tb_offset)

        shell.set_custom_exc((RuntimeError, *saved.types), hold)
        self._inner_run = None
        outer_result = shell.displayhook.exec_result
        try:
            with self._running_inner(number, cell_id):
                result = shell.run_cell(source, store_history=False, silent=False, cell_id=cell_id)
        finally:
            saved.put_back(shell)
            shell.displayhook.exec_result = outer_result  # the inner run cleared it
        if outer_result is not None:
            outer_result.result = result.result  # the cell's value, as without the magic
        error = result.error_before_exec if result.error_before_exec is not None else result.error_in_exec
        if isinstance(error, (SystemExit, bdb.BdbQuit)):
            return  # IPython itself lets these end a cell without failing it
        caught = error is None and nested  # a %%capture body failed; the magic kept the error
        if error is None and not caught:
            return
        raised, when = held[0] if held and held[0][0] is error else (nested[0] if caught else (None, 0.0))
        if raised is not None:
            run = self._inner_run
            window = None
            if run is not None:
                window = FailedCell(
                    [CellCode(number, run.transformed, run.filename)],
                    self.starts.get(number),
                    when - run.started,
                )
            mapped = (
                inner.mapped(self.cellmap, number, cell_id, header) if inner else contextlib.nullcontext()
            )
            self._diagnose_and_show(raised, window, options, mapped, show_traceback=not caught)
        if error is not None:
            self._raise_quietly(error)

    @contextlib.contextmanager
    def _running_inner(self, number: int, cell_id: str | None) -> Iterator[None]:
        """Compile the body as part of In[number]: its traceback says ``Cell In[number]``, as it
        would without the magic (run_cell would number it as the next cell)."""
        compiler = self.shell.compile
        own = vars(compiler).get("cache")
        cache = compiler.cache

        def cache_as_outer(transformed_code: str, _number: int = 0, raw_code: str | None = None) -> str:
            name: str = cache(transformed_code, number, raw_code)
            return name

        compiler.cache = cache_as_outer
        self._inner = (number, cell_id)
        try:
            yield
        finally:
            self._inner = None
            if own is None:
                del compiler.cache
            else:
                compiler.cache = own

    def _raise_quietly(self, error: BaseException) -> None:
        """Raise ``error`` out of the magic so the cell fails, without IPython showing it again."""
        saved = ExceptionHook.current(self.shell)
        # the traceback the user saw: raising again prepends the magic's frames and IPython's
        own = error.__traceback__

        def quiet(shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any = None) -> Any:
            self._end_quiet()
            if value is error:
                # IPython then formats the error once more, for its history: from the frames the
                # user saw, not through ours (and not by parsing IPython's and our sources, a
                # second or more the first time, which only the first diagnosis would pay)
                error.with_traceback(own)
                return None  # its traceback is already on screen
            return saved.show(shell, etype, value, tb, tb_offset)

        self.shell.set_custom_exc((type(error), *saved.types), quiet)
        self._quiet_previous, self._quiet_handler = saved, self.shell.CustomTB
        raise error

    def _end_quiet(self) -> None:
        if self._quiet_previous is not None and self.shell.CustomTB is self._quiet_handler:
            self._quiet_previous.put_back(self.shell)
        self._quiet_previous = self._quiet_handler = None

    # -- both

    def _diagnose_and_show(
        self,
        error: BaseException,
        cell: FailedCell | None,
        options: Options,
        mapped: contextlib.AbstractContextManager[Any] | None = None,
        show_traceback: bool = True,
    ) -> None:
        self._replaying = True
        try:
            with prompt_cell_names(), mapped or contextlib.nullcontext():
                outcome: Outcome = diagnose_failure(
                    self.shell,
                    self.cellmap,
                    cell,
                    error,
                    starts=self.starts,
                    replay=options.replay,
                    fixes=options.fixes,
                    progress=Progress,
                    time_limit=options.time_limit,
                    allow_advance=options.allow_advance,
                )
        finally:
            self._replaying = False
        report_internal_error(outcome)
        if not outcome.unconfirmed or outcome.internal_error is not None:
            add_note(error, outcome.note())
        if show_traceback:
            self.shell.showtraceback((type(error), error, error.__traceback__), running_compiled_code=True)
        if outcome.diagnosis is None:
            return
        # In a kernel the panel shows at once and each fix's label follows its verification; a
        # terminal prints once, so there the fixes are verified first.
        live = getattr(self.shell, "kernel", None) is not None
        shown: Shown | None = None
        if live:
            shown = self._show(outcome, pending_fixes(outcome))
        self._verify(outcome, shown)
        if not live:
            self._show(outcome, ())

    def _show(self, outcome: Outcome, verifying: Collection[int]) -> Shown | None:
        assert outcome.diagnosis is not None
        try:
            with prompt_cell_names():
                return display_diagnosis(outcome.diagnosis, self.cellmap.sources, self.lab, verifying)
        except Exception as failure:  # ours; the user's traceback is already shown
            print(f"inplace_magic: could not display the diagnosis ({failure!r})", file=sys.stderr)
            return None

    def _verify(self, outcome: Outcome, shown: Shown | None) -> None:
        def told(index: int, verdict: dict[str, Any]) -> None:
            if shown is not None:
                with prompt_cell_names():
                    shown.update_fix(index, cast("FixVerdict", verdict))

        before = outcome.internal_error
        self._replaying = True
        try:
            with prompt_cell_names():
                verify_fixes(self.shell, outcome, told, Progress)
        finally:
            self._replaying = False
        if outcome.internal_error is not before:  # a bug of ours while verifying: said, once
            report_internal_error(outcome)
        if shown is not None and outcome.verification is not None:
            shown.refresh()  # the text/HTML fallback with the final verdicts
