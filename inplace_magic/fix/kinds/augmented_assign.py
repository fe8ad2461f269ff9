"""``x += y`` → ``x = x + y``: the sum becomes a new tensor and the saved one stays untouched.

Only plain names and attributes are rewritten: ``x[i] += y`` would still write into ``x`` (it is a
``__setitem__``), which :mod:`.clone` handles by cloning first.
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import code_of

_OPERATORS: dict[type[cst.BaseAugOp], type[cst.BaseBinaryOp]] = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.FloorDivideAssign: cst.FloorDivide,
    cst.ModuloAssign: cst.Modulo,
    cst.PowerAssign: cst.Power,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply,
    cst.LeftShiftAssign: cst.LeftShift,
    cst.RightShiftAssign: cst.RightShift,
    cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr,
    cst.BitXorAssign: cst.BitXor,
}
# Operands that bind at least as tightly as any binary operator need no parentheses.
_ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.Imaginary,
    cst.SimpleString,
)


def out_of_place(node: cst.AugAssign) -> cst.Assign | None:
    op = _OPERATORS.get(type(node.operator))
    if op is None or not isinstance(node.target, (cst.Name, cst.Attribute)):
        return None
    value = node.value
    if not isinstance(value, _ATOMS) and not value.lpar:
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Assign(
        targets=[cst.AssignTarget(node.target)],
        value=cst.BinaryOperation(left=node.target, operator=op(), right=value),
        semicolon=node.semicolon,
    )


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    seen: list[cst.AugAssign] = []
    for parsed, site in ctx.at("inplace", "merge", "also"):
        for node in parsed.at_line(site.line, cst.AugAssign):
            new = out_of_place(node)
            if new is None or any(node is s for s in seen):
                continue
            seen.append(node)
            cells = ctx.rewrite(parsed, {node: lambda updated: out_of_place(updated) or updated})  # type: ignore[arg-type]
            if cells:
                before, after = code_of(node), code_of(new)
                out.append(
                    Candidate(
                        "augmented_assign",
                        f"Write `{after}` instead of `{before}`",
                        f"`{before}` writes into a tensor that autograd saved for backward; `{after}` "
                        f"computes a new tensor and leaves the saved one alone ({cell_name(parsed.index)}, "
                        f"line {parsed.start(node)}).",
                        cells,
                    )
                )
    return out
