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
    from .ipython.magic import load
    from .ipython.warm_up import warm_up

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
