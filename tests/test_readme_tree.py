"""The README's "How it works" names every module of the package under its own folder's heading.

A newcomer reads the pipeline from that section, so a module added without a line there (or a line
left behind for a module that moved) fails here rather than going stale quietly.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inplace_magic"


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## How it works")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _named_by_heading() -> dict[str, set[str]]:
    """Folder (relative to the package, "" for the package itself) -> the module paths its block names."""
    blocks: dict[str, set[str]] = {}
    folder: str | None = None
    for line in _section().splitlines():
        heading = re.match(r"\*\*`inplace_magic/([\w/]*)`\*\*", line)
        if heading:
            folder = heading.group(1).rstrip("/")
            blocks.setdefault(folder, set())
        if folder is not None:
            blocks[folder].update(re.findall(r"`([\w/]+\.py)`", line))
    return blocks


def _modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if "__pycache__" in relative.parts or relative.parts[0] in {"static", "labextension"}:
            continue
        top = relative.parts[0] if len(relative.parts) > 1 else ""
        inside = "/".join(relative.parts[1:]) if top else relative.name
        if top and inside.endswith("__init__.py"):
            continue  # a stage's __init__ is named only where it is an entry point of its own
        found.setdefault(top, set()).add(inside)
    return found


def test_every_module_is_named_under_its_folder() -> None:
    named = _named_by_heading()
    missing = {
        f"inplace_magic/{folder + '/' if folder else ''}{module}"
        for folder, modules in _modules().items()
        for module in modules
        if module not in named.get(folder, set())
    }
    assert not missing, f"README 'How it works' does not name: {sorted(missing)}"


def test_every_module_named_exists() -> None:
    stale = {
        f"inplace_magic/{folder + '/' if folder else ''}{module}"
        for folder, modules in _named_by_heading().items()
        for module in modules
        if not (PACKAGE / folder / module).exists()
    }
    assert not stale, f"README 'How it works' names modules that are gone: {sorted(stale)}"
