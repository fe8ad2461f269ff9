"""``%%gradcheck`` and ``%gradcheck on|off``: the IPython face of the engine, and nothing more.

The magics parse their options and hand over to :class:`~.extension.Extension`, which the
``%load_ext`` of this package creates once per shell.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..pipeline.kernel import FixMode
from .extension import Extension, Options

_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# IPython's decorators are untyped; these aliases say what they do, once
_magic = cast(_Decorator, line_cell_magic)
_arguments = cast(Callable[[], _Decorator], magic_arguments)
_argument = cast(Callable[..., _Decorator], argument)


@magics_class
class GradcheckMagics(Magics):
    def __init__(self, shell: Any, extension: Extension) -> None:
        super().__init__(shell)
        self.extension = extension

    @_arguments()
    @_argument(
        "mode",
        nargs="?",
        choices=["on", "off"],
        help="line magic only: diagnose every cell that fails with an in-place error (on), or stop (off)",
    )
    @_argument(
        "--no-replay",
        action="store_true",
        help="do not re-execute anything: show only what the error itself tells (its kind and place)",
    )
    @_argument("--no-fix", action="store_true", help="diagnose only; do not suggest fixes")
    @_argument(
        "--verify-fixes",
        action="store_true",
        help="run each suggested fix in a separate Python process, re-executing this session's cells there",
    )
    @_magic
    def gradcheck(self, line: str, cell: str | None = None) -> None:
        """Diagnose PyTorch "modified by an inplace operation" autograd errors.

        %%gradcheck runs the cell exactly as IPython would. If it fails with an in-place autograd
        error (in backward, torch.autograd.grad, or a leaf/view write in forward), the cell is
        REPLAYED: its code is executed a second time under diagnostic hooks, which name the
        in-place operation, the operation that saved the tensor, and the skip connection it breaks.
        The report is shown below the usual traceback, and the original exception is raised again
        (with a short note), so "run all" stops as before.

        The replay starts from the state the failed run left, with the random state the cell
        started with (same dropout masks). When the failing cell alone does not show where the
        tensors came from (forward in one cell, backward in the next) or where the layer involved
        was built, the earlier cells it reads names from are replayed with it (at most 8 cells).

        Restored afterwards, so the kernel is as the failed run left it: the random states of
        torch, numpy and random; every tensor that existed before the replay and was written during
        it, bit for bit (with its version counter); the names the replay rebound; modules,
        optimizers (state, param groups) and other objects reachable from the namespace; the .grad
        of reachable tensors.

        NOT undone: side effects outside torch (files written, network, numpy arrays written in
        place, global state of other libraries). What the replay prints or displays is hidden.
        Use --no-replay to re-execute nothing. Ctrl-C during the replay stops it and restores state.

        %gradcheck on / %gradcheck off: the same diagnosis for every cell that fails with an
        in-place error, without the cell magic (through IPython's custom exception hook).
        inplace_magic.last_diagnosis() returns the latest diagnosis as a JSON-able dict.
        """
        args = parse_argstring(self.gradcheck, line)
        fixes: FixMode = "none" if args.no_fix else ("verify" if args.verify_fixes else "suggest")
        options = Options(replay=not args.no_replay, fixes=fixes)
        if cell is None:
            self.extension.switch(args.mode, options)
            return
        if args.mode is not None:
            raise UsageError("%%gradcheck takes options only; use the line magic for: %gradcheck on|off")
        self.extension.run_cell_checked(line, cell, options)


_LOADED: weakref.WeakKeyDictionary[Any, Extension] = weakref.WeakKeyDictionary()


def load(shell: Any) -> None:
    if shell not in _LOADED:
        extension = Extension(shell)
        extension.load()
        shell.register_magics(GradcheckMagics(shell, extension))
        _LOADED[shell] = extension


def unload(shell: Any) -> None:
    extension = _LOADED.pop(shell, None)
    if extension is not None:
        extension.unload()
