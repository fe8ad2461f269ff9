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


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext inplace_magic``: register ``%%gradcheck`` and ``%gradcheck on|off``, and start
    the background warm-up of what the first diagnosis would pay once (:mod:`.ipython.warm_up`)."""
    import importlib

    from .ipython.magic import load
    from .ipython.warm_up import warm_up

    # torch._dynamo here, before any cell runs: torch imports it at the first op of its own dispatch
    # modes (allow_mutation_on_saved_tensors, in a user's cell or the compiled-code check's eager
    # reference; the live verification's reference keeps saved values without it) and torch.optim
    # at the first optimizer, a second or more. In the background it raced a cell's
    # @torch.compile (its circular imports with torch._inductor across two threads: _DeadlockError,
    # "partially initialized module") and slowed the cells it met; at the first verification it
    # fell on the first diagnosis alone (issue 15, B9).
    importlib.import_module("torch._dynamo")
    load(ipython).warm_up = warm_up()


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
