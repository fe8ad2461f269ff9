"""Backward without the dispatch mode, also when the kernel's undo log watches the replay.

On a small model backward is most of the ops a replay dispatches, and the recorder (lean, a stale
saved tensor's diagnosis) records none of them: with an undo log they went through the mode only
so the log could see a write into memory that existed before the replay. Autograd's own C++
nodes write no such memory but one: ``AccumulateGrad`` adds into a ``.grad`` that already exists.
Everything else that can is Python run by backward (a hook, a custom Function, a checkpoint's
recomputation, a tensor subclass's dispatch, DDP's reducer aside). So the mode may be off when:

* no accelerator is initialized: CPU backward runs on the calling thread, where the guard below
  watches; a device's backward runs in the engine's own threads, which it cannot reach;
* no process group exists (DDP's reducer writes its buckets from C++ hooks);
* no debugger or coverage tool traces this thread (the guard is a trace function);
* the graph, walked once at the backward call, holds no custom Function and no leaf with hooks of
  its own, and no more nodes than a walk may meet (``torch_facts.GRAPH_WALK_LIMIT``); the
  ``.grad`` each ``AccumulateGrad`` will add into is shown to the log first, as the first write of
  that memory (what the mode would have shown it);
* nothing in the replay so far said Python will run in backward: a tensor hook registered, or
  saved-tensor hooks entered (a non-reentrant checkpoint, ``save_on_cpu``):
  :meth:`LiftedBackward.python_noted`.

And a trace function guards the rest: the first Python frame backward starts that is not
ours (a hook registered on a node, say, or on a graph an earlier cell built, which neither sees)
raises :class:`BackwardRanPython` before it runs a line; the replay is then run again with the mode
kept on (``Recorder.lift=False``). So a run is voided only where Python in backward came unannounced;
the kernel lifts only where its cells ran short (Python's cost per op dominates), so a void costs
little there.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.autograd.function import BackwardCFunction
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode, _pop_mode, _push_mode

from .frames import is_own_file
from .torch_facts import GRAPH_WALK_LIMIT

_ACCUMULATE_GRAD: Any = torch._C._functions.AccumulateGrad  # type: ignore[attr-defined]
_GRAPH_TASK: Callable[[], int] = torch._C._current_graph_task_id


class BackwardRanPython(BaseException):
    """Backward started Python code of the user's or a library's while the undo log could not see its
    writes: the replay is void and runs again with the dispatch mode on. A BaseException, so that a
    cell's own ``except Exception`` around ``backward()`` does not swallow it."""


def _only_this_thread() -> bool:
    """No accelerator's backward threads can be running: none is initialized."""
    accelerator = torch.accelerator.current_accelerator()
    if accelerator is None:
        return True
    return accelerator.type == "cuda" and not torch.cuda.is_initialized()


def _roots(t_outputs: Sequence[Any]) -> tuple[list[Any], list[torch.Tensor]] | None:
    """The graph's roots, and the leaves backward is called on directly (``leaf.backward()``)."""
    nodes, leaves = [], []
    for t in t_outputs:
        if isinstance(t, torch.autograd.graph.GradientEdge):
            nodes.append(t.node)
        elif not isinstance(t, torch.Tensor):
            return None
        elif t.grad_fn is not None:
            nodes.append(t.grad_fn)
        elif t.requires_grad:
            leaves.append(t)
    return nodes, leaves


def accumulated_into(
    t_outputs: Sequence[Any], inputs: Sequence[Any] | None, accumulate: bool = True
) -> list[torch.Tensor] | None:
    """The existing ``.grad`` tensors this backward call may add into in place (none for
    ``autograd.grad``, which accumulates nothing), or None when the dispatch mode must stay on (see
    the module docstring)."""
    if sys.gettrace() is not None or not _only_this_thread():
        return None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return None
    found = _roots(t_outputs)
    if found is None:
        return None
    stack, leaves = found
    for t in (inputs or ()) if accumulate else ():
        if not isinstance(t, torch.Tensor) or not t.is_leaf:
            return None  # a non-leaf's .grad: the engine adds into it from a hook of its own
        leaves.append(t)
    seen = set(stack)  # a node's Python wrapper is one object while it lives, and this keeps it alive
    while stack:
        node = stack.pop()
        if isinstance(node, BackwardCFunction):
            return None  # Python backward: a custom Function, a module's full backward hook
        if len(seen) > GRAPH_WALK_LIMIT:
            return None  # wrappers on a longer chain could crash the graph's teardown
        if type(node) is _ACCUMULATE_GRAD:
            leaves.append(node.variable)
            continue
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    grads: list[torch.Tensor] = []
    for leaf in leaves:
        if leaf._backward_hooks or leaf._post_accumulate_grad_hooks is not None:
            return None
        if accumulate and leaf.grad is not None:
            grads.append(leaf.grad)
    return grads


def _refusing(engine: Any, refused: Callable[[], None]) -> Callable[..., None]:
    """The trace function while backward runs without the mode: inside the graph task, a frame the
    engine starts (its caller is ``engine``, torch's Python call into the engine: C frames do not
    show) must be inplace_magic's own (the saved-tensor unpack hook); what our frames call is ours."""

    def refuse(frame: Any, event: str, arg: Any) -> None:
        # first the common case, our unpack hook and what it calls: a test on a string
        if event != "call" or is_own_file(frame.f_code.co_filename) or _GRAPH_TASK() == -1:
            return None  # (or torch's Python around the engine call, before and after it)
        chain, caller = [], frame
        while caller is not None and caller.f_code is not engine:
            if is_own_file(caller.f_code.co_filename):
                return None
            chain.append(caller.f_code)
            caller = caller.f_back
        if not _signal_handlers().isdisjoint(chain):
            return None  # Ctrl-C (a kernel's handler), a time limit: no write of backward's, and not lost
        refused()
        code = frame.f_code
        raise BackwardRanPython(f"{code.co_name} ({code.co_filename}:{frame.f_lineno}) ran in backward")

    return refuse


def _signal_handlers() -> set[Any]:
    """The code of every signal handler written in Python (it may run between any two of backward's
    nodes); looked up only when a frame is about to be refused."""
    codes = set()
    for signum in signal.valid_signals():
        handler = signal.getsignal(signum)
        handler = getattr(handler, "__func__", handler)
        code = getattr(handler, "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


class LiftedBackward:
    """Takes ``mode`` off the dispatch mode stack for each outermost backward call where it may be
    off: always without an undo log (nothing then needs backward's ops); with one, where
    :func:`accumulated_into` allows it and nothing noted Python to come (:meth:`python_noted`), under
    the guard. ``lift=False``: never with an undo log. ``ran_python`` says whether the guard stopped a
    backward call (the run is then void)."""

    def __init__(self, mode: TorchDispatchMode, undo: Any = None, lift: bool = True) -> None:
        self.mode, self.undo, self.lift = mode, undo, lift
        self.ran_python = False
        self._depth = 0
        self._lifted = False

    def enter(self, engine: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._depth += 1
        # the engine takes the dispatch mode stack as it is now into its threads
        if self._depth > 1 or _get_current_dispatch_mode() is not self.mode:
            return
        if self.undo is not None:
            if not self.lift or engine is None or not args:
                return
            # torch.autograd's call: (outputs, grad_tensors, retain_graph, create_graph, inputs, ...)
            inputs = kwargs.get("inputs", args[4] if len(args) > 4 else None)
            grads = accumulated_into(args[0], inputs, kwargs.get("accumulate_grad", True))
            if grads is None:
                return
            _pop_mode()  # first: the log's copies are no ops of the replay's
            for grad in grads:
                self.undo.will_write(grad)
            sys.settrace(_refusing(engine, self._refused))
        else:
            _pop_mode()
        self._lifted = True

    def _refused(self) -> None:
        self.ran_python = True

    @contextmanager
    def python_noted(self) -> Iterator[None]:
        """While entered, what says Python will run in backward turns lifting off for the rest of the
        run, so that the guard need not void it: a tensor hook registered (``Tensor.register_hook``,
        the common way to look at an activation's gradient), or saved-tensor hooks entered (a
        non-reentrant checkpoint's recomputation, ``save_on_cpu``) inside the replay."""
        register_hook = torch.Tensor.register_hook
        enter_hooks = torch.autograd.graph.saved_tensors_hooks.__enter__
        lifting = self

        def noted_register_hook(tensor: torch.Tensor, hook: Any) -> Any:
            lifting.lift = False
            return register_hook(tensor, hook)

        def noted_enter(hooks: Any) -> Any:
            lifting.lift = False
            return enter_hooks(hooks)

        torch.Tensor.register_hook = noted_register_hook  # type: ignore[method-assign]
        torch.autograd.graph.saved_tensors_hooks.__enter__ = noted_enter  # type: ignore[method-assign]
        try:
            yield
        finally:
            torch.Tensor.register_hook = register_hook  # type: ignore[method-assign]
            torch.autograd.graph.saved_tensors_hooks.__enter__ = enter_hooks  # type: ignore[method-assign]

    def leave(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._lifted:
            if self.undo is not None:
                sys.settrace(None)
            _push_mode(self.mode)
            self._lifted = False


Enter = Callable[[Any, tuple[Any, ...], dict[str, Any]], None]


@contextmanager
def backward_calls(enter: Enter, leave: Callable[[], None]) -> Iterator[bool]:
    """Tell ``enter(engine, args, kwargs)`` and ``leave()`` of every backward call (``backward()``,
    ``autograd.grad``): they all go through the engine entry torch.autograd looks up at each call.
    Yields False on a torch without that entry (nothing is then told)."""
    original = getattr(torch.autograd, "_engine_run_backward", None)
    if original is None:
        yield False
        return
    engine = getattr(original, "__code__", None)  # the frame the engine's hooks see as their caller

    def engine_run_backward(*args: Any, **kwargs: Any) -> Any:
        enter(engine, args, kwargs)
        try:
            return original(*args, **kwargs)
        finally:
            leave()

    torch.autograd._engine_run_backward = engine_run_backward  # type: ignore[attr-defined]
    try:
        yield True
    finally:
        torch.autograd._engine_run_backward = original  # type: ignore[attr-defined]
