"""State carried across training iterations without a detach (truncated BPTT done wrong).

``out, state = model(x, state)`` in a loop that also calls ``backward()``: each iteration's graph
reaches back into the previous ones, whose saved weights ``optimizer.step()`` has since changed.
Detaching the carried state at the top of the iteration cuts the graph at the batch boundary;
``retain_graph=True``, usually added to get past "backward through the graph a second time", is
then unnecessary. This changes what is backpropagated, so it is labelled as changing semantics.
"""

from __future__ import annotations

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import ParsedCell, code_of, statement
from .reorder_step import _calls_attr, _reads, _targets


def _detach(name: str) -> cst.BaseStatement:
    return statement(
        f"if {name} is not None:\n"
        f"    {name} = tuple(s.detach() for s in {name}) if isinstance({name}, tuple) else {name}.detach()\n"
    )


def _drop_retain_graph(updated: cst.CSTNode) -> cst.CSTNode:
    if not isinstance(updated, cst.Call):
        return updated
    args = [a for a in updated.args if not (a.keyword is not None and a.keyword.value == "retain_graph")]
    if args and len(args) < len(updated.args):
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return updated.with_changes(args=args)


def _insert(names: list[str]) -> object:
    def change(updated: cst.CSTNode) -> cst.CSTNode | cst.FlattenSentinel[cst.BaseStatement]:
        if not isinstance(updated, cst.SimpleStatementLine):
            return updated
        guards = [_detach(n) for n in names]
        guards[0] = guards[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel([*guards, updated.with_changes(leading_lines=())])

    return change


def _loop(parsed: ParsedCell, node: cst.CSTNode) -> cst.For | cst.While | None:
    for ancestor in parsed.ancestors(node):
        if isinstance(ancestor, (cst.For, cst.While)):
            return ancestor
    return None


def candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for parsed, site in ctx.at("saved_by"):
        line = parsed.statement_at(site.line)
        loop = _loop(parsed, line) if line is not None else None
        if line is None or loop is None:
            continue
        backward = _calls_attr(parsed, loop, "backward")
        carried = sorted(_targets(line) & _reads(line))
        if not backward or not carried:
            continue
        retained = [
            call
            for call in backward
            if any(a.keyword is not None and a.keyword.value == "retain_graph" for a in call.args)
        ]
        names = ", ".join(f"`{n}`" for n in carried)
        for drop in [True, False] if retained else [False]:
            changes: dict[cst.CSTNode, object] = {line: _insert(carried)}
            if drop:
                changes.update({call: _drop_retain_graph for call in retained})
            cells = ctx.rewrite(parsed, changes)  # type: ignore[arg-type]
            if not cells:
                continue
            extra = " and drop `retain_graph=True`, which is no longer needed" if drop else ""
            out.append(
                Candidate(
                    "other",
                    f"Detach the carried state {names} at each iteration"
                    + (" (no retain_graph)" if drop else ""),
                    f"{names} is carried from one iteration to the next through "
                    f"`{code_of(line.body[0]).strip()}` ({cell_name(parsed.index)}, line "
                    f"{parsed.start(line)}), "
                    "so each backward reaches into earlier iterations' graphs, whose saved weights the "
                    "optimizer has since updated. Detach it at the top of the iteration (truncated "
                    f"backpropagation through time){extra}. This changes what is backpropagated: "
                    "gradients no longer flow into earlier batches.",
                    cells,
                    changes_semantics=True,
                )
            )
    return out
