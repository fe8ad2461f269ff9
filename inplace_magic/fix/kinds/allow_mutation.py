"""Fallback: run the failing cell under ``torch.autograd.graph.allow_mutation_on_saved_tensors()``.

Inside the context autograd keeps a copy of each saved tensor just before it is modified in place,
so backward sees the original values: the gradients are exactly those the code meant, at the cost of
one extra copy per modified saved tensor, held until backward has run. The forward, the in-place
write and the backward must all run inside the context, so the whole failing cell is wrapped.
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import expr

_CONTEXT = "torch.autograd.graph.allow_mutation_on_saved_tensors()"


def _is_setup(stmt: cst.BaseStatement) -> bool:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return True
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body
    )


def _wrap(updated: cst.CSTNode) -> cst.CSTNode:
    if not isinstance(updated, cst.Module):
        return updated
    body = list(updated.body)
    first = next((i for i, stmt in enumerate(body) if not _is_setup(stmt)), None)
    if first is None:
        return updated
    inner = [body[first].with_changes(leading_lines=()), *body[first + 1 :]]
    wrapped = cst.With(
        items=[cst.WithItem(expr(_CONTEXT))],
        body=cst.IndentedBlock(inner),
        leading_lines=body[first].leading_lines,
    )
    return updated.with_changes(body=[*body[:first], wrapped])


def _failing_cell(ctx: Context) -> int | None:
    error = ctx.diagnosis.get("error")
    cell = error.get("cell") if isinstance(error, dict) else None
    if isinstance(cell, int) and cell in ctx.parsed:
        return cell
    return max(ctx.parsed) if ctx.parsed else None


def candidates(ctx: Context) -> list[Candidate]:
    index = _failing_cell(ctx)
    if index is None or ctx.kind != "version_counter":
        return []
    parsed = ctx.parsed[index]
    cells = ctx.rewrite(parsed, {parsed.module: _wrap}, needs_torch=True)
    if not cells:
        return []
    return [
        Candidate(
            "allow_mutation",
            "Let autograd keep copies: wrap the cell in `allow_mutation_on_saved_tensors()` (extra memory)",
            f"Runs {cell_name(index)} under `{_CONTEXT}`: autograd copies each saved tensor just "
            "before it is "
            "modified in place, so the gradients are exactly those the code meant. Memory cost: one "
            "extra copy of every saved tensor that is modified, held until backward has run. Prefer a "
            "precise fix; use this when the in-place write is needed.",
            cells,
            fallback=True,
        )
    ]
