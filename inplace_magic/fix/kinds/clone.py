"""Copies that keep the saved tensor intact: clone before the write, at an alias, or when saving.

* ``y[:, 0] = 0`` (or ``y.clamp_()``, ``y[i] += 1``) on a saved tensor → ``y = y.clone()`` first.
  On a view that autograd forbids writing (a ``chunk``/``split`` output, a view made under
  ``no_grad``) the same edit is a ``view_clone``.
* ``r = y`` then a write through ``r`` → ``r = y.clone()``.
* ``ctx.save_for_backward(a, b)`` in a custom Function → save ``a.clone()``, ``b.clone()``.

Each costs one copy of the tensor; the gradients are unchanged unless the write was meant to reach
the base tensor or other aliases, which the verifier's gradient check shows.
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate, FixKind
from ..parse import ParsedCell, code_of, dotted, statement


def _root(node: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(node, cst.Subscript):
        node = node.value
    return node


def written_roots(small: cst.BaseSmallStatement, parsed: ParsedCell) -> list[tuple[str, cst.CSTNode]]:
    """(dotted name, node) of each tensor the statement writes in place."""
    found: list[tuple[str, cst.CSTNode]] = []
    if isinstance(small, cst.Assign):
        for target in small.targets:
            if isinstance(target.target, cst.Subscript):
                found.append((dotted(_root(target.target)) or "", target.target))
    elif isinstance(small, cst.AugAssign):
        found.append((dotted(_root(small.target)) or "", small.target))
    for call in parsed.nodes(cst.Call):
        func = call.func
        if (
            parsed.within(call, small)
            and isinstance(func, cst.Attribute)
            and func.attr.value.endswith("_")
            and not func.attr.value.endswith("__")
            and dotted(func.value) not in ("torch", "F", "torch.nn.functional", "nn.functional")
        ):
            found.append((dotted(_root(func.value)) or "", call))
    return [(name, node) for name, node in found if name and "(" not in name]


def _is_loop_variable(parsed: ParsedCell, node: cst.CSTNode, name: str) -> bool:
    return any(
        isinstance(a, cst.For) and isinstance(a.target, cst.Name) and a.target.value == name
        for a in parsed.ancestors(node)
    )


def _insert_before(line: cst.SimpleStatementLine, code: str) -> cst.FlattenSentinel[cst.BaseStatement]:
    new = statement(code)
    # Comments and blank lines that introduced the statement now introduce the copy.
    new = new.with_changes(leading_lines=line.leading_lines)
    return cst.FlattenSentinel([new, line.with_changes(leading_lines=())])


def _clone_before(ctx: Context) -> list[Candidate]:
    kind: FixKind = "view_clone" if ctx.kind == "view_inplace" else "clone_before"
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace", "also"):
        line = parsed.statement_at(site.line)
        if line is None:
            continue
        for small in line.body:
            for name, node in written_roots(small, parsed):
                if _is_loop_variable(parsed, node, name) or name == "self":
                    continue
                code = f"{name} = {name}.clone()"
                cells = ctx.rewrite(parsed, {line: lambda updated, c=code: _insert_before(updated, c)})  # type: ignore[misc]
                if cells and not any(c.cells == cells for c in out):
                    what = "view" if kind == "view_clone" else "tensor"
                    out.append(
                        Candidate(
                            kind,
                            f"Clone `{name}` before writing to it",
                            f"Insert `{code}` before `{code_of(small)}` ({cell_name(parsed.index)}, line "
                            f"{parsed.start(line)}): the write then goes to a copy, and the {what} "
                            "autograd needs stays as it was. Costs one copy of the tensor.",
                            cells,
                        )
                    )
    return out


def _alias_clone(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace"):
        line = parsed.statement_at(site.line)
        if line is None:
            continue
        written = {name for small in line.body for name, _ in written_roots(small, parsed)}
        scope = parsed.enclosing(line, cst.FunctionDef)
        aliases = [
            a
            for a in parsed.nodes(cst.Assign)
            if parsed.start(a) < parsed.start(line)
            and parsed.enclosing(a, cst.FunctionDef) is scope
            and isinstance(a.value, (cst.Name, cst.Attribute))
            and len(a.targets) == 1
            and dotted(a.targets[0].target) in written
        ]
        if not aliases:
            continue
        alias = max(aliases, key=parsed.start)
        source = code_of(alias.value)
        new_value = cst.parse_expression(f"{source}.clone()")
        cells = ctx.rewrite(parsed, {alias.value: lambda _u, v=new_value: v})  # type: ignore[misc]
        if cells:
            target = code_of(alias.targets[0].target)
            out.append(
                Candidate(
                    "alias_clone",
                    f"Copy at the alias: `{target} = {source}.clone()`",
                    f"`{target}` is another name for `{source}`, so writing through it changes the "
                    f"tensor autograd saved. Cloning at the alias ({cell_name(parsed.index)}, line "
                    f"{parsed.start(alias)}) gives the write its own copy.",
                    cells,
                )
            )
    return out


def _clone_saved(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("saved_by"):
        for call in parsed.at_line(site.line, cst.Call):
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "save_for_backward"):
                continue

            def cloned(updated: cst.CSTNode) -> cst.CSTNode:
                if not isinstance(updated, cst.Call):
                    return updated
                args = [
                    arg.with_changes(value=cst.parse_expression(f"{code_of(arg.value)}.clone()"))
                    if not arg.star and isinstance(arg.value, (cst.Name, cst.Attribute))
                    else arg
                    for arg in updated.args
                ]
                return updated.with_changes(args=args)

            cells = ctx.rewrite(parsed, {call: cloned})
            if cells:
                out.append(
                    Candidate(
                        "clone_before",
                        "Save copies in `save_for_backward`",
                        f"The custom Function saves tensors that are modified in place after its forward "
                        f"ran ({cell_name(parsed.index)}, line {parsed.start(call)}). Saving clones "
                        "keeps the "
                        "values its backward needs, at the cost of one copy of each.",
                        cells,
                    )
                )
    return out


def candidates(ctx: Context) -> list[Candidate]:
    return _clone_before(ctx) + _alias_clone(ctx) + _clone_saved(ctx)
