"""In-place methods and functions → their out-of-place forms.

``x.add_(y)`` as a statement becomes ``x = x.add(y)`` (the name is rebound to a new tensor);
used inside an expression (``y = x.relu_()``, ``f(a, b.clamp_(-20, 2))``) only the call changes.
``detach_()`` becomes ``h = h.detach()``, which leaves the saved tensor attached to its graph.
"""

from __future__ import annotations

import libcst as cst
import torch

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import Changes, ParsedCell, code_of, dotted, expr

# Methods whose trailing underscore does not mean "writes the tensor's values", or whose
# out-of-place twin has another meaning.
_NOT_VALUE_WRITES = {
    "requires_grad_",
    "share_memory_",
    "set_",
    "resize_",
    "resize_as_",
    "apply_",
    "map_",
    "map2_",
}


def _method_exists(owner: object, name: str) -> bool:
    return callable(getattr(owner, name, None))


def _replacement(call: cst.Call) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(out-of-place expression, the tensor the call wrote), or None."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return None
    name = func.attr.value
    if not name.endswith("_") or name.endswith("__") or name in _NOT_VALUE_WRITES:
        return None
    base = name[:-1]
    module = dotted(func.value)
    if module in ("torch", "F", "torch.nn.functional", "nn.functional") and call.args:
        owner: object = torch if module == "torch" else torch.nn.functional
        if not (_method_exists(owner, name) and _method_exists(owner, base)):
            return None
        return call.with_changes(func=func.with_changes(attr=cst.Name(base))), call.args[0].value
    if not _method_exists(torch.Tensor, name):
        return None
    receiver = func.value
    if name == "zero_" and not call.args:
        return expr(f"torch.zeros_like({code_of(receiver)})"), receiver
    if name == "fill_" and len(call.args) == 1:
        return expr(f"torch.full_like({code_of(receiver)}, {code_of(call.args[0].value)})"), receiver
    if not _method_exists(torch.Tensor, base):
        return None
    return call.with_changes(func=func.with_changes(attr=cst.Name(base))), receiver


def _is_loop_target(parsed: ParsedCell, node: cst.CSTNode, name: str) -> bool:
    """Rebinding a ``for`` variable would drop the update silently (``for p in params: p.add_(..)``)."""
    for ancestor in parsed.ancestors(node):
        if isinstance(ancestor, cst.For) and name in {n.value for n in _names(ancestor.target)}:
            return True
    return False


def _names(node: cst.CSTNode) -> list[cst.Name]:
    if isinstance(node, cst.Name):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for el in node.elements for n in _names(el.value)]
    return []


def _rebind(updated: cst.CSTNode) -> cst.CSTNode:
    """``x.op_(..)`` statement → ``x = x.op(..)``."""
    if not isinstance(updated, cst.Expr) or not isinstance(updated.value, cst.Call):
        return updated
    found = _replacement(updated.value)
    if found is None:
        return updated
    new, receiver = found
    if not isinstance(receiver, (cst.Name, cst.Attribute)):
        return updated
    return cst.Assign([cst.AssignTarget(receiver)], new, semicolon=updated.semicolon)


def _swap(updated: cst.CSTNode) -> cst.CSTNode:
    if isinstance(updated, cst.Call):
        found = _replacement(updated)
        if found is not None:
            return found[0]
    return updated


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace", "also"):
        for call in parsed.at_line(site.line, cst.Call):
            found = _replacement(call)
            if found is None:
                continue
            new, receiver = found
            target = dotted(receiver)
            statement = parsed.parent(call)
            if isinstance(statement, cst.Expr):
                if target is None or _is_loop_target(parsed, call, target):
                    continue
                changes: Changes = {statement: _rebind}
                after = f"{target} = {code_of(new)}"
                note = f"`{target}` now names a new tensor; the one autograd saved is left as it was."
            else:
                changes = {call: _swap}
                after = code_of(new)
                note = (
                    f"`{target}` itself is no longer modified; only the expression uses the result."
                    if target
                    else "The written tensor is no longer modified."
                )
            cells = ctx.rewrite(parsed, changes)
            if cells and not any(c.cells == cells for c in out):
                before = code_of(call)
                out.append(
                    Candidate(
                        "inplace_method",
                        f"Use `{after}` instead of `{before}`",
                        f"`{before}` modifies in place a tensor needed by autograd "
                        f"({cell_name(parsed.index)}, "
                        f"line {parsed.start(call)}). {note}",
                        cells,
                    )
                )
    return out
