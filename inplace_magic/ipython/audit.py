"""``%%gradcheck --audit``: the cell runs once, in the kernel's namespace, under the audit recorder,
and the silent in-place writes it made are reported below it (:mod:`..diagnose.silent`).

This is the cell's own run, not a replay: nothing runs twice and nothing is restored. Under the
recorder the cell runs with saved-tensor hooks (PyTorch's own version check is redone by the
recorder, which stops backward at the first stale saved tensor with an error of its own, where a
plain run raises PyTorch's) and compiled code runs eagerly. An error the cell raises is raised
again as it came, with a note; the audit reports what it saw up to there. Fixes are offered
unverified (verifying one would run the cell again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..diagnose.diagnosis import CELL_NAME
from ..diagnose.silent import Hazard, silent_hazards
from ..pipeline.core import find_fixes
from ..present.audit import render_audit
from ..record.recorder import ReplayStopped
from ..record.saved_contents import AuditRecorder
from ..replay.cells import Cell
from ..replay.run import SourceMap, compile_cells, dialect_of, run_program
from .exceptions import add_note

_STOPPED_NOTE = (
    "inplace_magic --audit: the cell ran under the recorder, which stopped backward here at a tensor "
    "modified after it was saved (a plain run raises PyTorch's in-place error at the same point). "
    "Run the cell with %%gradcheck, without --audit, for the diagnosis."
)


@dataclass
class _Lookup:
    """This cell's code by our own name, earlier cells through the extension's map."""

    own: SourceMap
    kernel: Any

    def cell_of(self, filename: str) -> tuple[int, str | None] | None:
        found = self.own.cell_of(filename)
        if found is None and self.kernel is not None:
            found = self.kernel.cell_of(filename)
        return found  # type: ignore[no-any-return]


def run_audited(shell: Any, body: str, cellmap: Any = None) -> list[Hazard]:
    """Run ``body`` as this cell, audited; print the findings; raise the cell's error, if any."""
    number = int(getattr(shell, "execution_count", 0) or 0)
    cells = [Cell(number, body)]
    source_map = SourceMap()
    program = compile_cells(cells, source_map, prefix="audited cell", dialect=dialect_of(cells, None))
    recorder = AuditRecorder()
    with torch.compiler.set_stance("force_eager"), recorder:
        error = run_program(program, shell.user_ns, interruptible=True).exception
    token = CELL_NAME.set("cell [{}]")
    try:
        hazards = silent_hazards(
            recorder.trace, recorder.contents, _Lookup(source_map, cellmap), shell.user_ns
        )
        for hazard in hazards[:2]:
            # offered, not run: verifying would run the cell again, and here it ran once, for real
            hazard.diagnosis.fixes = find_fixes(cells, hazard.diagnosis, None, verify=False)
        notes = []
        if recorder.contents.unchecked:
            notes.append(
                f"The contents of {recorder.contents.unchecked} saved tensors were not kept (past the "
                f"{recorder.contents.cap_bytes / 2**20:g} MiB cap, INPLACE_MAGIC_AUDIT_MIB): for them only "
                "the dispatched writes were checked."
            )
        print(render_audit([h.diagnosis for h in hazards], [h.saves for h in hazards], None, notes, cells))
    finally:
        CELL_NAME.reset(token)
    if error is not None:
        if isinstance(error, ReplayStopped):
            add_note(error, _STOPPED_NOTE)
        raise error
    return hazards
