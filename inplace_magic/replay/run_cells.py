"""Run cells as ``inplace-magic check`` runs them, as a program of its own: one rank of a fix's
verification under the same launch (:mod:`inplace_magic.pipeline.distributed`).

Usage: ``python -m inplace_magic.replay.run_cells CELLS.json RESULT.json``, where the first file holds
``{"cells": [[index, source, kind, cell_id], ...], "script_path", "dialect", "skip_shell",
"time_limit_s"}`` (all but ``cells`` optional). The cells run as ``python PATH`` would run them
(:func:`~.run.as_script`), in the check's dialect, within the time limit. Exit code 0 when every
cell ran, 1 when one raised an in-place autograd error, 2 for any other exception (its traceback on
stderr, as Python prints it) or the time limit. RESULT.json gets the exception and when it was
raised: the rank that failed first is the cause, the others often fail because it left their
collective.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

from ..record.family import classify
from .cells import Cell
from .process_group import freeze_what_is_loaded, release_groups
from .run import SourceMap, as_script, compile_cells, fresh_namespace, run_program
from .time_limit import TimeLimitExceeded, time_limit


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # the user's __str__ raised: Python prints a placeholder too
        return "<exception str() failed>"
    return text.splitlines()[0][:300] if text else ""


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as handle:
        job = json.load(handle)
    cells = [Cell(int(i), str(source), kind, cell_id) for i, source, kind, cell_id in job["cells"]]
    script_path = job.get("script_path")
    program = compile_cells(
        cells, SourceMap(), dialect=job.get("dialect", "python"), skip_shell=bool(job.get("skip_shell"))
    )
    limit = job.get("time_limit_s")
    freeze_what_is_loaded()  # the collection after the run (release_groups) walks the user's objects only
    error: dict[str, Any] | None = None
    code = 0
    try:
        with as_script(script_path), time_limit(limit):
            result = run_program(program, fresh_namespace(script_path))
    except TimeLimitExceeded as stop:
        error = {"type": "TimeLimitExceeded", "message": str(stop), "cell": None}
        code = 2
    else:
        if result.exception is not None:
            traceback.print_exception(result.exception)
            error = {"type": type(result.exception).__name__, "message": _first_line(result.exception)}
            error["cell"] = result.cell
            code = 1 if classify(result.exception) is not None else 2
    failed_at = time.time()  # wall clock: comparable between the ranks of one machine
    # a gloo group still alive at exit aborts the interpreter (SIGABRT), which would read as a failure
    release_groups()
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump({"error": error, "at": failed_at}, handle)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
