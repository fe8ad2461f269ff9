"""Where in the user's code something happened, and where in a library's.

Every file is one of three kinds:

* **user**: code the user wrote (notebook cells, scripts, their own modules and packages): where a
  fix goes;
* **library**: a package installed in site-packages other than torch (torchvision, timm,
  transformers): the line an op sits on when the user's model comes from a library, reported with
  the user's line that ran it beside it (the library is never edited);
* **internal**: torch, the standard library, IPython and the kernel, inplace_magic itself: never a
  location (an op inside torch's own ``nn`` modules is located at the line that called the module).

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
from typing import Final, Literal

import torch


@dataclass(frozen=True, slots=True)
class Frame:
    filename: str
    lineno: int
    function: str
    autograd_function: str | None = None  # ``Scale`` when this is ``Scale.forward`` of an autograd.Function


FileKind = Literal["user", "library", "internal"]
USER: Final = "user"
LIBRARY: Final = "library"
INTERNAL: Final = "internal"

# Installed packages that are torch or run the user's code (a kernel, a notebook runner), not a
# library the user's model comes from: never a location.
_INTERNAL_PACKAGES = frozenset(
    {
        "torch",
        "functorch",
        "torchgen",
        "triton",
        "IPython",
        "ipykernel",
        "jupyter_client",
        "jupyter_core",
        "traitlets",
        "tornado",
        "zmq",
        "nbclient",
        "comm",
        "debugpy",
        # test runners run the user's code too (pytest-xdist's workers through execnet's exec)
        "_pytest",
        "pytest",
        "pluggy",
        "execnet",
        "xdist",
    }
)
_INSTALLED = ("site-packages", "dist-packages")  # where pip (and Debian's Python) install packages


def _dir_of(module_file: str | None) -> str | None:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep if module_file else None


def _internal_prefixes() -> tuple[str, ...]:
    """torch (also where it is not installed in site-packages: a source build) and inplace_magic."""
    torch_dir = _dir_of(torch.__file__)
    # the whole package, not just this folder: no frame of inplace_magic is the user's
    own = _dir_of(os.path.dirname(os.path.abspath(__file__)))
    assert torch_dir is not None and own is not None
    return torch_dir, own


def _stdlib_prefixes() -> tuple[str, ...]:
    # in a virtual environment platstdlib is the environment's lib/pythonX.Y, which holds its
    # site-packages too: installed packages are classified before this prefix is looked at
    paths = sysconfig.get_paths()
    return tuple(os.path.abspath(p) + os.sep for name in ("stdlib", "platstdlib") if (p := paths.get(name)))


def installed_path(path: str) -> str | None:
    """The path of an installed file below its site-packages (``torchvision/models/resnet.py``),
    the name people know it by; None for a file that is not installed."""
    parts = path.split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _INSTALLED:
            return "/".join(parts[i + 1 :])
    return None


def _installed_package(path: str) -> str | None:
    """The top-level package of a file installed in site-packages (``torchvision``), else None."""
    below = installed_path(path)
    if below is None:
        return None
    top = below.split("/", 1)[0]
    return top.removesuffix(".py")


_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def is_own_file(filename: str) -> bool:
    """A file of inplace_magic itself (its dispatch and function modes sit between user code and torch)."""
    return filename.startswith(_OWN)


_PREFIXES: tuple[tuple[str, ...], tuple[str, ...]] | None = None
_KIND: dict[str, FileKind] = {}


def file_kind(filename: str) -> FileKind:
    """Whose code ``filename`` is: the user's, an installed library's, or torch's and the like."""
    cached = _KIND.get(filename)
    if cached is not None:
        return cached
    global _PREFIXES
    if _PREFIXES is None:
        _PREFIXES = _internal_prefixes(), _stdlib_prefixes()
    internal, stdlib = _PREFIXES
    kind: FileKind
    if filename.startswith(("<frozen", "<__array_function__")):
        kind = INTERNAL
    elif filename.startswith("<"):
        kind = USER  # cells compiled under pseudo-names, exec'd strings
    else:
        path = os.path.abspath(filename)
        package = _installed_package(path)
        if path.startswith(internal):
            kind = INTERNAL
        elif package is not None:
            kind = INTERNAL if package in _INTERNAL_PACKAGES else LIBRARY
        elif path.startswith(stdlib):
            kind = INTERNAL
        else:
            kind = USER
    _KIND[filename] = kind
    return kind


def is_user_file(filename: str) -> bool:
    """True for code the user wrote: notebook cells, scripts, their own packages."""
    return file_kind(filename) == USER


def is_library_file(filename: str) -> bool:
    """True for an installed library other than torch (torchvision, timm, transformers)."""
    return file_kind(filename) == LIBRARY


def is_code_file(filename: str) -> bool:
    """True where an op can be located: the user's code or a library's (not torch, not ours)."""
    return file_kind(filename) != INTERNAL


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
    """The innermost ``limit`` user frames of the current stack, innermost first, with the library
    lines between them: an op inside a library's code is at the innermost library frame, and the
    user's line that ran it follows it.

    Of each run of library frames (a library model's forward calls its blocks' forwards) only the
    innermost is kept, the line the op or the next call sits on; library frames outside the
    outermost user frame found (a test runner's) are dropped.
    """
    found: list[Frame] = []
    users = 0
    in_library = False  # the frame last kept is a library frame: its callers up to the user's are not
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None and users < limit:
        filename = frame.f_code.co_filename
        kind = _KIND.get(filename) or file_kind(filename)
        if kind == USER:
            found.append(_frame(frame, frame.f_lineno))
            users += 1
            in_library = False
        elif kind == LIBRARY and not in_library:
            found.append(_frame(frame, frame.f_lineno))
            in_library = True
        frame = frame.f_back
    if users and in_library:
        found.pop()
    return tuple(found)


def traceback_user_frames(tb: TracebackType | None) -> tuple[Frame, ...]:
    """User frames of a traceback, innermost first."""
    found: list[Frame] = []
    while tb is not None:
        if is_user_file(tb.tb_frame.f_code.co_filename):
            found.append(_frame(tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return tuple(reversed(found))


def forward_hook_of(module: torch.nn.Module, frames: tuple[Frame, ...]) -> str | None:
    """``"forward hook"`` or ``"forward pre-hook"`` when one of ``frames`` runs such a hook registered
    on ``module`` (torch runs them inside the module's call), else None: decided from the hooks'
    code objects, which the module holds."""
    registered = (("forward hook", module._forward_hooks), ("forward pre-hook", module._forward_pre_hooks))
    for kind, hooks in registered:
        codes = {(c.co_filename, c.co_name) for h in hooks.values() if (c := getattr(h, "__code__", None))}
        if codes and any((frame.filename, frame.function) in codes for frame in frames):
            return kind
    return None
