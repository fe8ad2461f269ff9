"""Which names a cell reads from earlier cells, and which names a cell defines.

Used to widen a replay backwards when the failing cell alone does not show where its tensors came
from (a forward in one cell and the backward in the next, a view taken in an earlier cell): the
earlier cells that define what the failing cell reads are replayed with it. Module-level names
only; this is a dependency hint, not a full analysis (``globals()[...]``, ``exec`` escape it).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from types import CodeType, FunctionType
from typing import Any


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


# a kernel's cells are parsed again at each diagnosis (the window, its widening, the streams): once is enough
@functools.lru_cache(maxsize=1024)
def _defined(source: str) -> frozenset[str]:
    tree = _parse(source)
    return frozenset(_stored(tree)) if tree is not None else frozenset()


def names_defined(source: str) -> set[str]:
    return set(_defined(source))


# IPython's magics that run their cell body or the rest of their line as Python in the user's namespace
_CODE_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
_MAGIC_CALLS = frozenset({"run_cell_magic", "run_line_magic"})


def _shell_calls(tree: ast.AST) -> list[ast.Call]:
    """The calls ``get_ipython().method(...)`` that IPython's transformer made of magics and escapes."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
    ]


def _magic_code(call: ast.Call) -> list[str] | None:
    """The Python a code-running magic runs (its line, its body); None for any other use of the shell."""
    strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr not in _MAGIC_CALLS or len(strings) != len(call.args) or not strings:
        return None
    return strings[1:] if strings[0] in _CODE_MAGICS else None


def hides_names(sources: list[str]) -> bool:
    """Some cell uses the shell in a way that may read names no source shows (``%run``, ``%%bash``
    writing a file a later line reads, any magic not in :data:`_CODE_MAGICS`)."""
    return any(map(_hides, sources))


@functools.lru_cache(maxsize=1024)
def _hides(source: str) -> bool:
    tree = _parse(source)
    return tree is None or any(_magic_code(call) is None for call in _shell_calls(tree))


def names_read(source: str) -> set[str]:
    """Names a cell reads before it binds them itself: what it takes from earlier cells, the bodies
    of ``%%time`` and the other code-running magics included."""
    return set(_read(source))


@functools.lru_cache(maxsize=1024)
def _read(source: str) -> frozenset[str]:
    tree = _parse(source)
    if tree is None:
        return frozenset()
    read: set[str] = set()
    bound: set[str] = set()
    for statement in tree.body:
        loads = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for call in _shell_calls(statement):
            for code in _magic_code(call) or ():
                loads |= names_read(code)
        read |= loads - bound
        bound |= _stored(statement)
    return frozenset(read)


def _nested_names(code: CodeType) -> set[str]:
    """Global and attribute names a code object uses, with those of the functions it defines."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _nested_names(constant)
    return names


class Overlay(dict):  # type: ignore[type-arg]
    """A copy of the notebook's namespace that a fix's verification runs in. The notebook's functions
    keep the notebook's own namespace as their globals, so they are the notebook's code here too."""

    def __init__(self, origin: dict[str, Any]) -> None:
        super().__init__(origin)
        self.origin = origin


def _notebooks(functions_globals: object, namespace: Mapping[str, Any]) -> bool:
    return functions_globals is namespace or functions_globals is getattr(namespace, "origin", None)


def _own_code(value: Any, namespace: Mapping[str, Any]) -> list[CodeType]:
    """The code of ``value`` when the notebook defined it: a function, a class (its methods), an
    instance of such a class, a bound method."""
    value = getattr(value, "__func__", value)
    if isinstance(value, FunctionType):
        return [value.__code__] if _notebooks(value.__globals__, namespace) else []
    kind = value if isinstance(value, type) else type(value)
    codes = []
    for attribute in vars(kind).values():
        function = getattr(attribute, "__func__", getattr(attribute, "fget", attribute))
        if isinstance(function, FunctionType) and _notebooks(function.__globals__, namespace):
            codes.append(function.__code__)
    return codes


def code_names(value: Any, namespace: Mapping[str, Any]) -> set[str]:
    """The global names that the notebook's own code in ``value`` (a function, a bound method, a class
    or an instance of one) may read."""
    names: set[str] = set()
    for code in _own_code(value, namespace):
        names |= _nested_names(code)
    return {name for name in names if name in namespace}


def names_reached(sources: list[str], namespace: Mapping[str, Any]) -> set[str]:
    """The names ``sources`` read, and the names the notebook's own functions and classes they use
    read in turn (``next_batch()`` reaches the global generator it calls ``next`` on).

    An over-estimate: attribute names that are also global names count as reached.
    """
    reached: set[str] = set().union(*(names_read(source) for source in sources))
    todo = list(reached)
    while todo:
        for name in code_names(namespace.get(todo.pop()), namespace) - reached:
            reached.add(name)
            todo.append(name)
    return reached
