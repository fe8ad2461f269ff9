"""``torch.f(..., out=t)`` → ``t = torch.f(...)``.

Autograd refuses ``out=`` calls when an input requires grad; assigning the result instead gives
the same values under the same name, and autograd records the op. Only a call that is a whole
statement is rewritten (its value is unused); inside an expression (``y = torch.add(a, b, out=c)``)
the result is bound twice, which the rewrite would have to untangle. Reported as an out-of-place
rewrite of an in-place call (``inplace_method``).
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import code_of


def _out_keyword(call: cst.Call) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == "out"), None)


def _assigned(updated: cst.CSTNode) -> cst.CSTNode:
    if not isinstance(updated, cst.Expr) or not isinstance(updated.value, cst.Call):
        return updated
    call = updated.value
    out = _out_keyword(call)
    if out is None or not isinstance(out.value, (cst.Name, cst.Attribute, cst.Subscript)):
        return updated
    args = [arg for arg in call.args if arg is not out]
    if args:  # the comma that followed the last kept argument went with ``out=``
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return cst.Assign(
        [cst.AssignTarget(out.value)], call.with_changes(args=args), semicolon=updated.semicolon
    )


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace"):
        for call in parsed.at_line(site.line, cst.Call):
            keyword = _out_keyword(call)
            statement = parsed.parent(call)
            if keyword is None or not isinstance(statement, cst.Expr):
                continue
            cells = ctx.rewrite(parsed, {statement: _assigned})
            if not cells or any(c.cells == cells for c in out):
                continue
            target = code_of(keyword.value)
            out.append(
                Candidate(
                    "inplace_method",
                    f"Assign the result to `{target}` instead of passing `out={target}`",
                    f"`{code_of(call)}` ({cell_name(parsed.index)}, line {parsed.start(call)}) writes "
                    "through out=, which autograd refuses while an input requires grad. Assigning the result "
                    f"keeps the values and the name; `{target}` then names a new tensor that autograd "
                    "tracks.",
                    cells,
                )
            )
    return out
