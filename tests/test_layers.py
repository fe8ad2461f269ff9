"""The tree is the pipeline: the layer contract in pyproject.toml holds, and no module imports
itself back through others (a cycle hides which stage a piece belongs to)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("inplace_magic")
    # the package root only re-exports: its lazy imports of the magic are how %load_ext finds it
    graph.remove_module("inplace_magic")
    assert _cycles(graph) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph) == [["a.x", "a.y"]]


def test_the_readme_lists_every_module_under_its_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## How it works") : readme.index("The error text only decides")]
    blocks = {}  # "replay" -> the lines under **`inplace_magic/replay/`**
    for block in section.split("\n**`inplace_magic/")[1:]:
        folder = block.split("`", 1)[0].rstrip("/")
        blocks[folder] = block
    unlisted = []
    for path in sorted((ROOT / "inplace_magic").rglob("*.py")):
        relative = path.relative_to(ROOT / "inplace_magic")
        if relative.parts[0] == "labextension" or (path.name == "__init__.py" and _only_a_docstring(path)):
            continue
        folder, inside = (
            (relative.parts[0], "/".join(relative.parts[1:])) if len(relative.parts) > 1 else ("", path.name)
        )
        if f"`{inside}`" not in blocks.get(folder, ""):
            unlisted.append(str(relative))
    assert unlisted == []
    # and the other way: no line left behind for a module that moved or went
    named = {
        f"{folder}/{module}" if folder else module
        for folder, block in blocks.items()
        for module in re.findall(r"`([\w/]+\.py)`", block)
    }
    gone = sorted(name for name in named if not (ROOT / "inplace_magic" / name).exists())
    assert gone == []


def _only_a_docstring(path: Path) -> bool:
    """A package whose __init__ says what the stage is and holds no code of its own."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)
