"""IPython's in-process test shell with the extension loaded, for the modules that test the magic in it
(test_magic.py, test_live_verification.py). It is one shell per process (a second shell class would
clash with it): each module's module-scoped ``ip`` fixture yields from :func:`with_the_extension`, so
conftest.py still sees one fixture per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from IPython.testing import globalipapp


def with_the_extension() -> Iterator[Any]:
    globalipapp.start_ipython()  # once per process; later calls leave the shell as it is
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "inplace_magic")
    yield shell
    shell.run_line_magic("unload_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")
