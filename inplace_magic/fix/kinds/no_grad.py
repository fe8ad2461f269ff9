"""Leaf updates with gradient tracking on → do them under ``with torch.no_grad():``.

A parameter or ``requires_grad`` leaf may only be updated in place when autograd is not recording
(the manual-SGD idiom). When the update is the only statement of a ``for`` loop (``for p in
model.parameters(): p.add_(...)``) the whole loop goes under ``no_grad``.
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import ParsedCell, code_of, dotted, expr


def _under_no_grad(parsed: ParsedCell, node: cst.CSTNode) -> bool:
    return any(
        isinstance(a, cst.With)
        and any(
            isinstance(item.item, cst.Call) and (dotted(item.item.func) or "").endswith("no_grad")
            for item in a.items
        )
        for a in parsed.ancestors(node)
    )


def _wrap(updated: cst.CSTNode) -> cst.CSTNode:
    if not isinstance(updated, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        return updated
    inner = updated.with_changes(leading_lines=())
    return cst.With(
        items=[cst.WithItem(expr("torch.no_grad()"))],
        body=cst.IndentedBlock([inner]),
        leading_lines=updated.leading_lines,
    )


def _is_pure_write(small: cst.BaseSmallStatement) -> bool:
    """``x.op_(...)``, ``x[i] = v`` or ``x += v``: statements whose only effect is the write."""
    if isinstance(small, cst.AugAssign):
        return True
    if isinstance(small, cst.Assign):
        return all(isinstance(t.target, cst.Subscript) for t in small.targets)
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value.endswith("_")
    )


def _target(parsed: ParsedCell, line: cst.SimpleStatementLine) -> cst.BaseStatement:
    """The statement to wrap: the line, or the ``for`` loops it is the whole body of."""
    node: cst.BaseStatement = line
    while True:
        block = parsed.parent(node)
        loop = parsed.parent(block) if block is not None else None
        if isinstance(block, cst.IndentedBlock) and isinstance(loop, cst.For) and len(block.body) == 1:
            node = loop
        else:
            return node


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace", "also"):
        line = parsed.statement_at(site.line)
        if line is None or _under_no_grad(parsed, line):
            continue
        if ctx.kind == "view_inplace" and not all(_is_pure_write(small) for small in line.body):
            continue  # wrapping a computation in no_grad would cut its gradient
        target = _target(parsed, line)
        cells = ctx.rewrite(parsed, {target: _wrap}, needs_torch=True)
        if cells and not any(c.cells == cells for c in out):
            what = "loop" if isinstance(target, cst.For) else "update"
            out.append(
                Candidate(
                    "no_grad",
                    f"Do the {what} under `torch.no_grad()`",
                    f"`{code_of(line.body[0]).strip()}` updates a tensor that requires grad while autograd "
                    f"records ({cell_name(parsed.index)}, line {parsed.start(line)}). Under "
                    "`torch.no_grad()` "
                    "the update is not part of the graph and the tensor stays a leaf, as optimizers do it.",
                    cells,
                )
            )
    return out
