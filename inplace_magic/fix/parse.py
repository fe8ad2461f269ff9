"""Cells as LibCST trees with positions, and one-pass rewrites that keep formatting and comments.

Rewrites follow LibCST's codemod contract: collect changes keyed by the *original* node, apply them
in one transformer pass. A change is a function of the updated node, so nested changes compose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, ParentNodeProvider, PositionProvider

from ..replay.cells import Cell

# IPython lines (magics, shell escapes) are not Python: they become this comment while we parse
# and are put back, with their original text, when a rewrite is rendered.
_MAGIC = "# inplace-magic-kept-line:"

Replacement = cst.CSTNode | cst.FlattenSentinel[cst.CSTNode] | cst.RemovalSentinel
Change = Callable[[cst.CSTNode], Replacement]
Changes = dict[cst.CSTNode, Change]
N = TypeVar("N", bound=cst.CSTNode)


@dataclass
class ParsedCell:
    index: int
    module: cst.Module
    positions: Mapping[cst.CSTNode, CodeRange]
    parents: Mapping[cst.CSTNode, cst.CSTNode]

    def start(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def end(self, node: cst.CSTNode) -> int:
        return self.positions[node].end.line

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def nodes(self, kind: type[N]) -> list[N]:
        return [node for node in self.positions if isinstance(node, kind)]

    def at_line(self, line: int, kind: type[N]) -> list[N]:
        """Nodes of ``kind`` that start on ``line``, then those inside the statement that covers it.

        A traceback line of a multi-line statement can be its first line or the line of the call
        that ran, so both are searched, exact matches first, each in source order.
        """
        exact = [node for node in self.nodes(kind) if self.start(node) == line]
        statement = self.statement_at(line)
        inside: list[N] = []
        if statement is not None:
            inside = [node for node in self.nodes(kind) if node not in exact and self.within(node, statement)]
        return sorted(exact, key=self._order) + sorted(inside, key=self._order)

    def statement_at(self, line: int) -> cst.SimpleStatementLine | None:
        """The innermost simple statement line that spans ``line``."""
        best: cst.SimpleStatementLine | None = None
        for node in self.nodes(cst.SimpleStatementLine):
            if self.start(node) <= line <= self.end(node) and (
                best is None or self.start(node) >= self.start(best)
            ):
                best = node
        return best

    def within(self, node: cst.CSTNode, outer: cst.CSTNode) -> bool:
        return node is outer or any(a is outer for a in self.ancestors(node))

    def enclosing(self, node: cst.CSTNode, kind: type[N]) -> N | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, kind):
                return ancestor
        return None

    def _order(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.positions[node].start
        return (start.line, start.column)


def protect(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + _MAGIC + stripped
        out.append(line)
    return "\n".join(out)


def restore(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(_MAGIC):
            line = line[: len(line) - len(stripped)] + stripped[len(_MAGIC) :]
        out.append(line)
    return "\n".join(out)


def parse_cell(cell: Cell) -> ParsedCell | None:
    """The cell's tree, or None for markdown and for code that does not parse."""
    if cell.kind != "code":
        return None
    try:
        module = cst.parse_module(protect(cell.source))
    except cst.ParserSyntaxError:
        return None
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    return ParsedCell(cell.index, wrapper.module, positions, parents)


class _Apply(cst.CSTTransformer):
    def __init__(self, changes: Changes) -> None:
        super().__init__()
        self.changes = changes

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Replacement:  # type: ignore[override]
        change = self.changes.get(original_node)
        return change(updated_node) if change is not None else updated_node


def render(parsed: ParsedCell, changes: Changes, module: cst.Module | None = None) -> str:
    """The cell's text with ``changes`` applied (IPython lines restored)."""
    tree = (module or parsed.module).visit(_Apply(changes))
    return restore(tree.code)


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def statement(code: str) -> cst.BaseStatement:
    return cst.parse_statement(code)


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)
