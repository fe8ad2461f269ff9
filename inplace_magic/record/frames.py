"""Where in the user's code something happened: the innermost frames that are not torch, the
standard library, IPython or inplace_magic itself.

Walking ``sys._getframe`` and classifying each code object once (cached by filename) costs a few
microseconds per capture; ``traceback.extract_stack`` costs 7-20x more (see the engine notes).
Only ``(filename, lineno, function)`` is stored; the source line is read when a report is made.
A frame that runs a custom ``torch.autograd.Function``'s ``forward`` or ``backward`` also carries the
Function's name, resolved once per code object from its qualified name and the frame's globals.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from types import FrameType, TracebackType

import torch


@dataclass(frozen=True, slots=True)
class Frame:
    filename: str
    lineno: int
    function: str
    autograd_function: str | None = None  # ``Scale`` when this is ``Scale.forward`` of an autograd.Function


def _dir_of(module_file: str | None) -> str | None:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep if module_file else None


def _library_prefixes() -> tuple[str, ...]:
    prefixes: list[str] = []
    for name in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            prefixes.append(os.path.abspath(path) + os.sep)
    for module in (
        "torch",
        "IPython",
        "ipykernel",
        "jupyter_client",
        "traitlets",
        "tornado",
        "zmq",
        "nbclient",
    ):
        mod = sys.modules.get(module)
        if mod is None and module == "torch":
            mod = torch
        path = _dir_of(getattr(mod, "__file__", None)) if mod is not None else None
        if path:
            prefixes.append(path)
    # the whole package, not just this folder: no frame of inplace_magic is the user's
    own = _dir_of(os.path.dirname(os.path.abspath(__file__)))
    assert own is not None
    prefixes.append(own)
    return tuple(prefixes)


_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def is_own_file(filename: str) -> bool:
    """A file of inplace_magic itself (its dispatch and function modes sit between user code and torch)."""
    return filename.startswith(_OWN)


_PREFIXES: tuple[str, ...] | None = None
_IS_USER: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True for code the user wrote: notebook cells, scripts, their own packages."""
    cached = _IS_USER.get(filename)
    if cached is not None:
        return cached
    global _PREFIXES
    if _PREFIXES is None:
        _PREFIXES = _library_prefixes()
    if filename.startswith("<frozen") or filename.startswith("<__array_function__"):
        result = False
    elif filename.startswith("<"):
        result = True  # cells compiled under pseudo-names, exec'd strings
    else:
        result = not os.path.abspath(filename).startswith(_PREFIXES)
    _IS_USER[filename] = result
    return result


_FUNCTION_METHODS = frozenset({"forward", "backward", "setup_context", "jvp", "vjp"})
_AUTOGRAD_FUNCTION: dict[tuple[str, int, str], str | None] = {}


def autograd_function_of(frame: FrameType) -> str | None:
    """The name of the custom ``torch.autograd.Function`` whose method ``frame`` runs, if any.

    Decided from the class the code belongs to (its qualified name looked up in the frame's
    globals), never from argument names: Functions call their context ``ctx`` or ``self``.
    """
    code = frame.f_code
    if code.co_name not in _FUNCTION_METHODS:
        return None
    qualname: str = getattr(code, "co_qualname", "")  # Python 3.11+; older versions name nothing
    key = (code.co_filename, code.co_firstlineno, qualname)
    if key in _AUTOGRAD_FUNCTION:
        return _AUTOGRAD_FUNCTION[key]
    owner: object = None
    path = qualname.split(".")[:-1]
    if path and not any(part.startswith("<") for part in path):
        owner = frame.f_globals.get(path[0])
        for part in path[1:]:
            owner = getattr(owner, part, None)
    name = owner.__name__ if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) else None
    _AUTOGRAD_FUNCTION[key] = name
    return name


def _frame(frame: FrameType, lineno: int) -> Frame:
    code = frame.f_code
    return Frame(code.co_filename, lineno, code.co_name, autograd_function_of(frame))


def user_frames(limit: int = 1, skip: int = 1) -> tuple[Frame, ...]:
    """The innermost ``limit`` user frames of the current stack, innermost first."""
    found: list[Frame] = []
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None and len(found) < limit:
        if is_user_file(frame.f_code.co_filename):
            found.append(_frame(frame, frame.f_lineno))
        frame = frame.f_back
    return tuple(found)


def traceback_user_frames(tb: TracebackType | None) -> tuple[Frame, ...]:
    """User frames of a traceback, innermost first."""
    found: list[Frame] = []
    while tb is not None:
        if is_user_file(tb.tb_frame.f_code.co_filename):
            found.append(_frame(tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return tuple(reversed(found))
