"""Torch attributes replaced for a replay's duration, shared by the first pass and the recorder.

Both install saved-tensor hooks and watch ``t.detach_()`` (which never reaches the dispatcher); each
replacement is put back on exit, and what each pass notes is its own callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def hooks_lifted_where_torch_disables_them(
    pack: Callable[..., Any], unpack: Callable[..., Any], lifted: Callable[[], Callable[[], None]]
) -> Iterator[None]:
    """``disable_saved_tensors_hooks(msg)`` raises ``msg`` when any hooks are installed (so
    ``torch.func.grad`` would fail in the replay only): take ours (``pack``/``unpack``) off the stack
    for its region. ``lifted()`` is called as the region starts, and what it returns as it ends.

    torch looks the function up on ``torch.autograd.graph`` at each call (``torch._functorch``), so
    replacing the attribute for the replay's duration reaches it; it is put back on exit.
    """
    original = torch.autograd.graph.disable_saved_tensors_hooks
    hooks = torch._C._autograd

    @contextmanager
    def disable_saved_tensors_hooks(error_message: str) -> Iterator[None]:
        top = hooks._top_saved_tensors_default_hooks(False)
        ours = top is not None and top[0] == pack
        if ours:
            hooks._pop_saved_tensors_default_hooks()
        ended = lifted() if ours else None
        try:
            with original(error_message):
                yield
        finally:
            if ours:
                hooks._push_saved_tensors_default_hooks(pack, unpack)
            if ended is not None:
                ended()

    torch.autograd.graph.disable_saved_tensors_hooks = disable_saved_tensors_hooks  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.autograd.graph.disable_saved_tensors_hooks = original


@contextmanager
def detach_calls_seen(seen: Callable[[torch.Tensor], None]) -> Iterator[None]:
    """``t.detach_()`` without a function mode: the method itself, for the replay's duration;
    ``seen(t)`` is called before each call."""
    original = torch.Tensor.__dict__["detach_"]

    def detach_(t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen(t)
        return original(t, *args, **kwargs)

    torch.Tensor.detach_ = detach_  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.Tensor.detach_ = original  # type: ignore[method-assign]
