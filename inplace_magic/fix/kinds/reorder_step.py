"""An optimizer step between a forward and a backward that still needs the old weights.

Two rewrites, both changing the training semantics (never offered as gradient-preserving):

* recompute: after the step, recompute the statements between the saving forward and the late
  loss, so its backward runs through the updated weights (the usual alternating GAN update);
* move: run the step after the last backward of the block, so every backward sees the weights it
  was built with; the later backward's gradients then also reach the stepped parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import libcst as cst

from ..context import Context
from ..model import Candidate
from ..parse import ParsedCell, code_of, dotted


def _calls_attr(parsed: ParsedCell, node: cst.CSTNode, attr: str) -> list[cst.Call]:
    return [
        call
        for call in parsed.nodes(cst.Call)
        if parsed.within(call, node) and isinstance(call.func, cst.Attribute) and call.func.attr.value == attr
    ]


def _targets(stmt: cst.BaseStatement) -> set[str]:
    names: set[str] = set()
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                targets = (
                    [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                )
                for target in targets:
                    names.update(_plain_names(target))
    return names


def _plain_names(node: cst.CSTNode) -> set[str]:
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, (cst.Tuple, cst.List)):
        return {n for el in node.elements for n in _plain_names(el.value)}
    return set()


class _Reads(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
        return not isinstance(node.target, (cst.Name, cst.Tuple, cst.List))


def _reads(stmt: cst.BaseStatement) -> set[str]:
    visitor = _Reads()
    stmt.visit(visitor)
    return visitor.names


def _top(parsed: ParsedCell, node: cst.CSTNode, body: Sequence[cst.BaseStatement]) -> int | None:
    """Index in ``body`` of the statement that contains ``node``."""
    for index, stmt in enumerate(body):
        if parsed.within(node, stmt):
            return index
    return None


def _recompute(
    ctx: Context,
    parsed: ParsedCell,
    block: cst.CSTNode,
    body: Sequence[cst.BaseStatement],
    step: int,
    loss: str,
) -> Candidate | None:
    savers = [
        index
        for p, site in ctx.at("saved_by")
        if p is parsed and (line := parsed.statement_at(site.line)) is not None
        if (index := _top(parsed, line, body)) is not None and index < step
    ]
    if not savers:
        return None
    start = min(savers)
    tainted, chain = _targets(body[start]), [start]
    for index in range(start + 1, step):
        if _reads(body[index]) & tainted:
            chain.append(index)
            tainted |= _targets(body[index])
    defining = [i for i in chain if loss in _targets(body[i])]
    if not defining:
        return None
    needed, recompute = {loss}, list[int]()
    for index in reversed(chain[: chain.index(defining[-1]) + 1]):
        if _targets(body[index]) & needed:
            recompute.insert(0, index)
            needed |= _reads(body[index])
    others = set(range(step)) - set(recompute)
    used_before = set().union(*(_reads(body[i]) for i in others)) if others else set()
    drop = {i for i in recompute if not (_targets(body[i]) & used_before)}

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(updated, (cst.Module, cst.IndentedBlock)):
            return updated
        current: list[Any] = list(updated.body)
        copies = [current[i].with_changes(leading_lines=()) for i in recompute]
        new = [s for i, s in enumerate(current[: step + 1]) if i not in drop] + copies + current[step + 1 :]
        return updated.with_changes(body=new)

    cells = ctx.rewrite(parsed, {block: change})
    if not cells:
        return None
    step_code = code_of(body[step]).strip()
    names = ", ".join(f"`{n}`" for i in recompute for n in sorted(_targets(body[i])))
    return Candidate(
        "reorder_step",
        f"Recompute {names} after `{step_code}`",
        f"`{loss}` was built by a forward that ran before `{step_code}`, which changed the weights that "
        f"forward saved. Recomputing {names} after the step makes `{loss}.backward()` use the updated "
        "weights: the standard alternating update. This changes the training semantics.",
        cells,
        changes_semantics=True,
    )


def _move(
    parsed: ParsedCell,
    ctx: Context,
    block: cst.CSTNode,
    step: int,
    last: int,
    body: Sequence[cst.BaseStatement],
) -> Candidate | None:
    def change(updated: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(updated, (cst.Module, cst.IndentedBlock)):
            return updated
        current: list[Any] = list(updated.body)
        moved = current[step]
        new = current[:step] + current[step + 1 : last + 1] + [moved] + current[last + 1 :]
        return updated.with_changes(body=new)

    cells = ctx.rewrite(parsed, {block: change})
    if not cells:
        return None
    step_code, last_code = code_of(body[step]).strip(), code_of(body[last]).strip()
    return Candidate(
        "reorder_step",
        f"Move `{step_code}` after `{last_code}`",
        f"Every backward then runs before `{step_code}` changes the weights its graph saved. This "
        "changes the training semantics: the later backward's gradients also accumulate into the "
        "parameters this optimizer updates (zero them first, or detach, if that is not wanted).",
        cells,
        changes_semantics=True,
    )


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("inplace"):
        line = parsed.statement_at(site.line)
        if line is None or not _calls_attr(parsed, line, "step"):
            continue
        block = parsed.parent(line)
        body: Sequence[cst.BaseStatement] = getattr(block, "body", ())
        if block is None or line not in body:
            continue
        step = list(body).index(line)
        later = [i for i in range(step + 1, len(body)) if _calls_attr(parsed, body[i], "backward")]
        if not later:
            continue
        losses = [
            name
            for i in later
            for call in _calls_attr(parsed, body[i], "backward")
            if isinstance(call.func, cst.Attribute) and (name := dotted(call.func.value))
        ]
        for loss in dict.fromkeys(losses):
            found = _recompute(ctx, parsed, block, body, step, loss)
            if found:
                out.append(found)
        moved = _move(parsed, ctx, block, step, later[-1], body)
        if moved:
            out.append(moved)
    return out
