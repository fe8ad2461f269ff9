"""A tensor a ``torch.func`` transform captured and the function writes in place → an argument.

``torch.func.grad`` (and ``vjp``, ``jacrev``, ``vmap`` of them) refuses writes into tensors the
transformed function captured from outside, but allows them into its arguments. The fix adds the
captured name as the function's last parameter and passes it at every transformed call; a ``vmap``
around the transform gets ``None`` for it in ``in_dims`` (one tensor for the whole batch, as the
captured one was). The write still happens, once per call, on the same tensor.
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..model import Candidate
from ..parse import Change, Changes, ParsedCell, dotted
from .clone import written_roots

_TRANSFORMS = frozenset({"grad", "grad_and_value", "vjp", "jacrev", "jacfwd", "hessian", "vmap"})


def _transform_name(node: cst.BaseExpression) -> str | None:
    name = dotted(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
    short = name.rsplit(".", 1)[-1] if name else None
    return short if short in _TRANSFORMS else None


def _layers(call: cst.Call, function: str) -> list[cst.Call] | None:
    """``vmap(grad(f), ...)`` -> [vmap call, grad call] when it transforms ``function``."""
    layers: list[cst.Call] = []
    current: cst.BaseExpression = call
    while isinstance(current, cst.Call) and _transform_name(current.func) and current.args:
        layers.append(current)
        current = current.args[0].value
    return layers if layers and isinstance(current, cst.Name) and current.value == function else None


def _vmap_in_dims(vmap: cst.Call, count: int) -> cst.Call | None:
    """``in_dims`` with ``None`` added for the new argument (``count`` arguments before it)."""
    keyword = next((a for a in vmap.args if a.keyword is not None and a.keyword.value == "in_dims"), None)
    positional = vmap.args[1] if len(vmap.args) > 1 and vmap.args[1].keyword is None else None
    arg = keyword or positional
    if arg is None:  # every argument batched along dim 0 so far; the new one is not
        dims = cst.parse_expression("(" + ", ".join(["0"] * count + ["None"]) + ")")
        args = [*vmap.args]
        args[-1] = args[-1].with_changes(comma=_COMMA)
        no_space = cst.SimpleWhitespace("")
        equal = cst.AssignEqual(whitespace_before=no_space, whitespace_after=no_space)
        return vmap.with_changes(args=[*args, cst.Arg(dims, keyword=cst.Name("in_dims"), equal=equal)])
    if not isinstance(arg.value, cst.Tuple):
        return None
    elements = [*arg.value.elements]
    if elements:
        elements[-1] = elements[-1].with_changes(comma=_COMMA)
    elements.append(cst.Element(cst.Name("None")))
    new = arg.with_changes(value=arg.value.with_changes(elements=elements))
    return vmap.with_changes(args=[new if a is arg else a for a in vmap.args])


_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _call_changes(parsed: ParsedCell, function: str, name: str) -> Changes:
    changes: Changes = {}
    for call in parsed.nodes(cst.Call):
        if not isinstance(call.func, cst.Call):
            continue
        layers = _layers(call.func, function)
        if layers is None:
            continue
        count = len(call.args)
        for layer in layers:
            if _transform_name(layer.func) == "vmap":

                def in_dims(updated: cst.CSTNode, count: int = count) -> cst.CSTNode:
                    if not isinstance(updated, cst.Call):
                        return updated
                    return _vmap_in_dims(updated, count) or updated

                changes[layer] = in_dims

        def add(updated: cst.CSTNode) -> cst.CSTNode:
            if not isinstance(updated, cst.Call):
                return updated
            args = [*updated.args]
            if args:
                args[-1] = args[-1].with_changes(comma=_COMMA)
            return updated.with_changes(args=[*args, cst.Arg(cst.Name(name))])

        changes[call] = add
    return changes


def _with_parameter(name: str) -> Change:
    def change(updated: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(updated, cst.FunctionDef):
            return updated
        params = [*updated.params.params]
        if params:
            params[-1] = params[-1].with_changes(comma=_COMMA)
        return updated.with_changes(
            params=updated.params.with_changes(params=[*params, cst.Param(cst.Name(name))])
        )

    return change


def candidates(ctx: Context) -> list[Candidate]:
    # decided from the code, not the diagnosis' member: the writing function must be the one a
    # transform applies, at a call in the cells
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace"):
        line = parsed.statement_at(site.line)
        function = parsed.enclosing(line, cst.FunctionDef) if line is not None else None
        if line is None or function is None:
            continue
        names = {name for small in line.body for name, _ in written_roots(small, parsed) if "." not in name}
        params = {p.name.value for p in function.params.params}
        for name in sorted(names - params):
            calls = {
                index: _call_changes(other, function.name.value, name) for index, other in ctx.parsed.items()
            }
            if not any(calls.values()):
                continue  # the function is not called through a transform here: nothing to pass it to
            calls[parsed.index][function] = _with_parameter(name)
            cells: dict[int, str] = {}
            for index, changes in calls.items():
                if changes:
                    cells.update(ctx.rewrite(ctx.parsed[index], changes) or {})
            if parsed.index in cells and len(cells) >= 1:
                out.append(
                    Candidate(
                        "other",
                        f"Pass `{name}` to `{function.name.value}` as an argument",
                        f"`{function.name.value}` writes in place into `{name}`, which it captures from "
                        "outside; torch.func transforms refuse that, but allow writes into arguments. "
                        f"`{name}` becomes its last parameter and is passed at each transformed call "
                        "(with `None` in a vmap's in_dims: one tensor for the whole batch).",
                        cells,
                    )
                )
    return out
