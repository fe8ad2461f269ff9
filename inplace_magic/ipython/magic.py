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
        "--no-verify",
        action="store_true",
        help="suggest fixes without re-executing them here to verify them",
    )
    @_argument("--verify-fixes", action="store_true", help="verify each fix in this kernel (the default)")
    @_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="stop each replay after S seconds (0: no limit); default: ten times the cell's own run, "
        "at least 30 s",
    )
    @_argument(
        "--allow-advance",
        action="store_true",
        help="replay even when the cell reads a generator or another iterator that cannot be set back "
        "(the replay then takes its next items, which a plain run would not)",
    )
    @_argument(
        "--audit",
        action="store_true",
        help="run the cell once under the recorder (its only run) and report every write into a tensor "
        "autograd saved that PyTorch did not detect: fused optimizers, .data, .numpy()",
    )
    @_magic
    def gradcheck(self, line: str, cell: str | None = None) -> None:
        """Diagnose PyTorch "modified by an inplace operation" autograd errors.

        %%gradcheck runs the cell exactly as IPython would. If it fails with an in-place autograd
        error (in backward, torch.autograd.grad, or a leaf/view write in forward), the cell is
        REPLAYED: its code is executed a second time under diagnostic hooks, which name the
        in-place operation, the operation that saved the tensor, and the skip connection it breaks.
        The report is shown below the usual traceback, and the original exception is raised again
        (with a short note saying how many times code was re-executed), so "run all" stops as
        before. The cell may start with another cell magic (%%time, %%capture) on its next line.

        How many times code runs again in this kernel: the failing cell once. When that replay
        does not show where the tensors came from (forward in one cell, backward in the next) or
        where the layer involved was built, the earlier cells it reads names from are replayed
        with it: at most twice more, at most 8 cells each time. So the failing cell runs at most
        3 more times, an earlier cell at most twice; rarely a replay runs its cells a second time
        (backward ran a hook nothing announced, such as one on a graph node): the note counts every
        run.

        Then each suggested fix is VERIFIED here, best first, once the report is shown (its label
        says "verifying..." until then): the cells the fix changes (often the earlier cell that
        defines the model), the cells between that use what they define, and the failing cell are
        re-executed with the fix, into a copy of the namespace and under the same undo log as the
        replay; when backward then succeeds, the same cells without the fix, under
        allow_mutation_on_saved_tensors, give the gradients it must match. It stops at the first
        fix verified and gradient-preserving: the best fix costs at most two re-executions, all
        fixes together at most 6. --no-verify suggests fixes without running them.

        Each replay starts from the state the failing cell started from: the random states of
        torch, numpy, random (and CUDA), random generator objects (np.random.default_rng,
        torch.Generator, random.Random), and the positions of iterators over lists, tuples,
        ranges and strings and of single-process DataLoader iterators (next(it) gives the batch
        the first run got). Each replay has a time limit (--time-limit); past it the replay is
        stopped, state is restored and your error is shown with a note.

        Restored afterwards, so the kernel is as the failed run left it: all of the above; every
        tensor that existed before the replay and was written during it, bit for bit (with its
        version counter), including tensors whose .data was assigned; the names the replay
        rebound; modules, optimizers (state, param groups) and other objects reachable from the
        namespace, with the lists, dicts, sets and deques they hold at any depth; the .grad of
        reachable tensors.

        NOT replayed unless you allow it (--allow-advance): a cell that reads a generator or
        another iterator that cannot be set back (zip, enumerate, a dict's iterator, a
        DataLoader iterator with workers); the note names it. NOT undone: side effects outside
        torch (files written, network, numpy arrays written in place, global state of other
        libraries). What the replay prints or displays is hidden. Use --no-replay to re-execute
        nothing. Ctrl-C during the replay stops it and restores state.

        %%gradcheck --audit runs the cell ONCE, under the recorder (that is its run: nothing is
        replayed or restored), and reports every write into a tensor autograd saved for a backward
        that then read it, which PyTorch's version counter did not see (fused optimizers, writes
        through .data or .numpy(), a saved leaf's .data assigned), labelled "silent: PyTorch did
        not detect this". Compiled code runs eagerly there. A version error stops backward with
        the recorder's own error (a plain run raises PyTorch's): run the cell without --audit to
        have it diagnosed.

        %gradcheck on / %gradcheck off: the same diagnosis for every cell that fails with an
        in-place error, without the cell magic (through IPython's custom exception hook); the
        options above apply to it. inplace_magic.last_diagnosis() returns the latest diagnosis
        as a JSON-able dict.
        """
        args = parse_argstring(self.gradcheck, line)
        fixes: FixMode = "none" if args.no_fix else ("suggest" if args.no_verify else "verify")
        if args.time_limit is not None and args.time_limit < 0:
            raise UsageError("--time-limit takes seconds, 0 or more (0: no limit)")
        options = Options(
            replay=not args.no_replay,
            fixes=fixes,
            time_limit=args.time_limit,
            allow_advance=args.allow_advance,
        )
        if cell is None:
            self.extension.switch(args.mode, options)
            return
        if args.mode is not None:
            raise UsageError("%%gradcheck takes options only; use the line magic for: %gradcheck on|off")
        if args.audit:
            from .audit import run_audited  # the audit's recorder and the fix stage: only when asked

            run_audited(self.shell, cell, self.extension.cellmap)
            return
        self.extension.run_cell_checked(line, cell, options)


_LOADED: weakref.WeakKeyDictionary[Any, Extension] = weakref.WeakKeyDictionary()


def load(shell: Any) -> Extension:
    if shell not in _LOADED:
        extension = Extension(shell)
        extension.load()
        shell.register_magics(GradcheckMagics(shell, extension))
        _LOADED[shell] = extension
    return _LOADED[shell]


def unload(shell: Any) -> None:
    extension = _LOADED.pop(shell, None)
    if extension is not None:
        extension.unload()
