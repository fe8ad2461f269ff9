"""Which names a cell reads from earlier cells, and which names a cell defines.

Used to widen a replay backwards when the failing cell alone does not show where its tensors came
from (a forward in one cell and the backward in the next, a view taken in an earlier cell): the
earlier cells that define what the failing cell reads are replayed with it. Module-level names
only; this is a dependency hint, not a full analysis (``globals()[...]``, ``exec`` escape it).
"""

from __future__ import annotations

import ast


def _stored(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            names.add(child.id)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(child.name)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
    return names


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def names_defined(source: str) -> set[str]:
    tree = _parse(source)
    return _stored(tree) if tree is not None else set()


def names_read(source: str) -> set[str]:
    """Names a cell reads before it binds them itself: what it takes from earlier cells."""
    tree = _parse(source)
    if tree is None:
        return set()
    read: set[str] = set()
    bound: set[str] = set()
    for statement in tree.body:
        loads = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        read |= loads - bound
        bound |= _stored(statement)
    return read
