"""IPython's in-process test shell with the extension loaded, for the modules that test the magic in it
(test_magic.py, test_live_verification.py). It is one shell per process (a second shell class would
clash with it): each module's module-scoped ``ip`` fixture yields from :func:`with_the_extension`, so
conftest.py still sees one fixture per module.

Every ``%reset -f`` runs ``gc.collect()`` twice, and a full collection walks every object of the
process: with torch, ``torch._dynamo``, IPython and the suite imported that is about 0.4 s each, and the
modules reset before every case (test_magic: 0.8 s of each case's 1.6). What exists once the shell is
ready is frozen (``gc.freeze``: left out of later collections, never freed), so a reset walks only
what the tests made since; their own objects are collected as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from IPython.testing import globalipapp


def with_the_extension() -> Iterator[Any]:
    globalipapp.start_ipython()  # once per process; later calls leave the shell as it is
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "inplace_magic")
    gc.freeze()
    try:
        yield shell
    finally:
        gc.unfreeze()  # back into the oldest generation: collected as ever from here on
    shell.run_line_magic("unload_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")
