"""What the first diagnosis of a process would otherwise pay once, paid after ``%load_ext`` in a
background thread while the kernel waits for the user (issue 15: the first diagnosis in a fresh
kernel at most 0.25 s slower than the next).

The thread works only while no cell runs (the extension tells :meth:`WarmUp.cell_started` and
:meth:`WarmUp.cell_ended`): a thread that competes for the GIL slows torch code in the main thread
several times over (each op gives the GIL up and waits to get it back). It stops between steps and,
inside an import, where each module's code starts (:func:`_before_each_module`), so a cell that
starts meanwhile waits for one module at most. Nothing is done at the first error: an error that
comes before the warm-up ends takes what is ready and pays for the rest itself. No step runs user
code or torch code: the user's namespace, the random states and torch's global state (grad mode,
default dtype, modes, hooks) are never touched here.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

THREAD_NAME = "inplace_magic warm-up"
_POLL_S = 0.05  # while paused: how often it looks whether the main thread waits for an import of it

# What a first diagnosis would otherwise import while the user waits for it, beyond what
# ``%load_ext`` itself imported: the panel and its widget library, the fix stage (LibCST) and the
# kernel's verification of the fixes (on by default).
IMPORTS = (
    "inplace_magic.panel.state",
    "inplace_magic.lab.comm",
    "inplace_magic.panel.widget",
    "inplace_magic.fix.find",  # the fix search (LibCST): the package imports it only when asked
    "inplace_magic.fix.live",
    "libcst.native",  # the parser LibCST loads at its first parse
)


def _import(name: str) -> Callable[[], object]:
    return lambda: importlib.import_module(name)


def _libcst_first_parse() -> None:
    """LibCST's first parse sets its parser up; the fix stage's first candidates would pay it."""
    import libcst

    libcst.parse_module("x = y + 1\n")


# ``torch._dynamo`` is imported by ``%load_ext`` itself, before any cell (see there).
STEPS: tuple[tuple[str, Callable[[], object]], ...] = (
    *((f"import {name}", _import(name)) for name in IMPORTS),
    ("LibCST's first parse", _libcst_first_parse),
)


@dataclass
class WarmUp:
    """The steps of :data:`STEPS`, one after the other, only while no cell runs."""

    steps: tuple[tuple[str, Callable[[], object]], ...] = STEPS
    idle: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    # a step that failed is left to the first diagnosis, which raises it where it is reported
    failed: list[tuple[str, str]] = field(default_factory=list)
    _running: int = 0  # cells running now, nested ones (a cell magic's body) counted too

    def __post_init__(self) -> None:
        self.idle.set()  # %load_ext may run outside any cell (a script, a test's shell)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        thread.start()
        return thread

    def cell_started(self) -> None:
        self._running += 1
        self.idle.clear()

    def cell_ended(self) -> None:
        # IPython says a cell ended even where it never said it started (an empty cell): clamped
        self._running = max(0, self._running - 1)
        if not self._running:
            self.idle.set()

    def pause(self) -> None:
        """Called in the warm-up's thread: wait while a cell runs. Not when the main thread waits
        for a module this thread is importing: it would wait forever, so this thread goes on."""
        main = threading.main_thread().ident
        while not self.idle.is_set():
            # first: while the main thread waits, every module of this import would add a poll
            frame = sys._current_frames().get(main or 0)
            if frame is not None and _waits_for_a_module(frame):
                return
            self.idle.wait(_POLL_S)

    def _run(self) -> None:
        sys.settrace(_before_each_module(self))  # this thread's only
        try:
            for what, step in self.steps:
                self.pause()
                try:
                    step()
                except Exception as error:  # not ours to report from a thread: see ``failed``
                    self.failed.append((what, repr(error)))
        finally:
            self.done.set()


def _waits_for_a_module(frame: FrameType) -> bool:
    """The thread of ``frame`` waits for a module lock (another thread is importing that module)."""
    code = frame.f_code
    return code.co_filename == "<frozen importlib._bootstrap>" and code.co_name == "acquire"


def _before_each_module(warm_up: WarmUp) -> Callable[[FrameType, str, Any], None]:
    """A trace function of the warm-up's thread that pauses it where a module's code starts to run:
    there it holds that module's import lock (and its parents'), never the import system's own
    (which it holds while asking the finders), so :meth:`WarmUp.pause` can let another thread have
    such a module by going on. Only new frames are seen (no line events): a cheap trace."""

    def trace(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name == "<module>":
            warm_up.pause()

    return trace


_PROCESS: WarmUp | None = None  # one per process: what it warms up is the process's


def warm_up() -> WarmUp:
    """The process's warm-up, started by the first ``%load_ext`` of this process."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = WarmUp()
        _PROCESS.start()
    return _PROCESS
