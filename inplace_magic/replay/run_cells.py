"""Run cells as ``inplace-magic check`` runs them, as a program of its own: one rank of a fix's
verification under the same launch (:mod:`inplace_magic.pipeline.distributed`).

Usage: ``python -m inplace_magic.replay.run_cells CELLS.json RESULT.json``, where the first file holds
``{"cells": [[index, source, kind, cell_id], ...], "script_path": ...}``. Exit code 0 when every
cell ran, 1 when one raised an in-place autograd error, 2 for any other exception (its traceback
on stderr, as Python prints it). RESULT.json gets the exception and when it was raised: the rank
that failed first is the cause, the others often fail because it left their collective.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

from ..record.family import classify
from .cells import Cell
from .process_group import release_groups
from .run import SourceMap, compile_cells, fresh_namespace, run_compiled, script_path_on_sys_path


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as handle:
        job = json.load(handle)
    cells = [Cell(int(i), str(source), kind, cell_id) for i, source, kind, cell_id in job["cells"]]
    script_path = job.get("script_path")
    with script_path_on_sys_path(script_path):
        result = run_compiled(compile_cells(cells, SourceMap()), fresh_namespace(script_path))
    failed_at = time.time()  # wall clock: comparable between the ranks of one machine
    # a gloo group still alive at exit aborts the interpreter (SIGABRT), which would read as a failure
    release_groups()
    error = None
    if result.exception is not None:
        traceback.print_exception(result.exception)
        message = str(result.exception).splitlines()[0][:300] if str(result.exception) else ""
        error = {"type": type(result.exception).__name__, "message": message, "cell": result.cell}
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump({"error": error, "at": failed_at}, handle)
    if result.exception is None:
        return 0
    return 1 if classify(result.exception) is not None else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
