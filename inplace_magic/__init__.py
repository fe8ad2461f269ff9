"""inplace_magic: names the in-place operation that broke PyTorch autograd, the operation that
saved the tensor, and the skip connection it breaks.

Importing the package has no side effects (and imports neither torch nor IPython);
``%load_ext inplace_magic`` registers the magics.
"""

from __future__ import annotations

import sys
from typing import Any

from ._version import __version__

__all__ = ["__version__", "last_diagnosis", "load_ipython_extension", "unload_ipython_extension"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lies (`jupyter labextension develop` reads this)."""
    return [{"src": "labextension", "dest": "inplace-magic"}]


# What a first diagnosis would otherwise import while the user waits for it: the replay and the
# analysis, the panel, and the fix stage (LibCST alone takes seconds). Imported in the background
# after ``%load_ext``, while the user runs cells; an error arriving first simply waits for them.
WARM_UP = (
    # torch's own dispatch modes import it at their first op (allow_mutation_on_saved_tensors: the gradient
    # reference of the fixes' verification), a second or more, once. First, and a cell waits for it
    # (_TORCH_FIRST): imported here while a cell's ``@torch.compile`` imported it too, its circular
    # imports with torch._inductor raised _DeadlockError or "partially initialized module" in the cell.
    "torch._dynamo",
    "inplace_magic.pipeline.kernel",
    "inplace_magic.fix.find",  # the fix search (LibCST): the package itself imports it lazily
    "inplace_magic.fix.live",  # the kernel's verification of the fixes, on by default
    "libcst.native",  # the parser LibCST loads at its first parse
    "inplace_magic.panel.state",
    "inplace_magic.panel.widget",
    "inplace_magic.lab.comm",
)


_TORCH_FIRST = 1  # the warm-up's first imports, which a cell must not race (torch's own circular imports)


def _warm_up(torch_done: Any) -> None:
    import importlib

    try:
        for name in WARM_UP[:_TORCH_FIRST]:
            importlib.import_module(name)  # a failure is the first diagnosis' too: it is raised there again
    finally:
        torch_done.set()
    for name in WARM_UP[_TORCH_FIRST:]:
        importlib.import_module(name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext inplace_magic``: register ``%%gradcheck`` and ``%gradcheck on|off``, then import
    in the background what the first diagnosis needs (:data:`WARM_UP`)."""
    import threading

    from .ipython.magic import load

    load(ipython)
    torch_done = threading.Event()

    def wait_for_torch_imports(*_: Any) -> None:
        torch_done.wait()  # once, and only when a cell comes within a second or two of %load_ext
        ipython.events.unregister("pre_run_cell", wait_for_torch_imports)

    ipython.events.register("pre_run_cell", wait_for_torch_imports)
    threading.Thread(target=_warm_up, args=(torch_done,), name="inplace_magic warm-up", daemon=True).start()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext inplace_magic``: switch ``%gradcheck`` off and remove the magics and hooks."""
    from .ipython.magic import unload

    unload(ipython)


def last_diagnosis() -> dict[str, Any] | None:
    """The latest diagnosis of this session, as the JSON-able dict ``inplace-magic check --json``
    prints (locations also carry the cell id where known), or None."""
    replayer = sys.modules.get(f"{__name__}.pipeline.kernel")
    if replayer is None:  # nothing was ever diagnosed in this process
        return None
    latest: dict[str, Any] | None = replayer.latest()
    return latest
