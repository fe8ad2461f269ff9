"""What every fix kind reads: the parsed cells, the diagnosis and the sites it names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from ..replay.cells import Cell
from .model import Role, Site
from .parse import Changes, ParsedCell, parse_cell, protect, render, restore
from .sites import roles, sites_of


@dataclass
class Context:
    cells: list[Cell]
    parsed: dict[int, ParsedCell]
    diagnosis: dict[str, Any]
    kind: str  # the diagnosis kind: version_counter, leaf_inplace, view_inplace, other
    sites: list[Site]

    @classmethod
    def build(cls, cells: list[Cell], diagnosis: dict[str, Any], extra: list[Site] | None = None) -> Context:
        parsed = {cell.index: p for cell in cells if (p := parse_cell(cell)) is not None}
        kind = diagnosis.get("kind")
        sites = sites_of(diagnosis) + [site for site in extra or [] if site not in sites_of(diagnosis)]
        return cls(cells, parsed, diagnosis, kind if isinstance(kind, str) else "other", sites)

    def at(self, *wanted: Role) -> list[tuple[ParsedCell, Site]]:
        """The sites in these roles that lie in a parsed code cell."""
        return [(self.parsed[s.cell], s) for s in roles(self.sites, *wanted) if s.cell in self.parsed]

    def source(self, index: int) -> str:
        return next(cell.source for cell in self.cells if cell.index == index)

    def rewrite(
        self, parsed: ParsedCell, changes: Changes, needs_torch: bool = False
    ) -> dict[int, str] | None:
        """``{cell: new text}``, or None when the changes leave the text as it was."""
        try:
            if needs_torch and not self._torch_imported(parsed.index):
                context = CodemodContext()
                AddImportsVisitor.add_needed_import(context, "torch")
                # Imports go in after the rewrite: the visitor returns a new tree, whose nodes
                # would no longer be the keys of ``changes``.
                new_text = render(parsed, changes)
                tree = AddImportsVisitor(context).transform_module(cst.parse_module(protect(new_text)))
                new_text = restore(tree.code)
            else:
                new_text = render(parsed, changes)
        except (cst.ParserSyntaxError, cst.CSTValidationError, TypeError, ValueError):
            return None
        return {parsed.index: new_text} if new_text != self.source(parsed.index) else None

    def _torch_imported(self, upto: int) -> bool:
        """``torch`` is bound by a top-level import in this cell or an earlier one."""
        for index, parsed in self.parsed.items():
            if index > upto:
                continue
            for stmt in parsed.module.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, cst.Import) and any(
                            alias.evaluated_alias is None and alias.evaluated_name.split(".")[0] == "torch"
                            for alias in small.names
                        ):
                            return True
        return False
