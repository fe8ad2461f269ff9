"""Regenerate the golden files of tests/test_fix_fixtures.py after an intended change to a rewrite.

    .venv/bin/python tests/regenerate_fix_fixtures.py

For each ``tests/fixtures/fix/<name>.py`` (percent-format cells) and ``<name>.json``
(``{"kind", "diagnosis"}``), writes ``<name>.fixed.py``: the cells after the first fix of that kind
(unverified: these pin the rewrite, the case tests run fixes for real). Review the diff before
committing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fix"
sys.path.insert(0, str(FIXTURES.parents[2]))

from inplace_magic.fix import find_fixes  # noqa: E402
from inplace_magic.replay.cells import read_cells  # noqa: E402


def inputs() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.py") if not p.name.endswith(".fixed.py"))


def fixed_text(source: Path) -> str:
    """The fixture's cells with the first fix of its kind applied, in percent format."""
    spec = json.loads(source.with_suffix(".json").read_text())
    cells = read_cells(str(source))
    fix = next(f for f in find_fixes(cells, spec["diagnosis"], verify=False) if f["kind"] == spec["kind"])
    changed = fix["cells"]
    return "\n".join(f"# %%\n{changed.get(str(c.index), c.source)}" for c in cells)


def main() -> None:
    for source in inputs():
        source.with_name(source.stem + ".fixed.py").write_text(fixed_text(source))
        print("wrote", source.with_name(source.stem + ".fixed.py").relative_to(FIXTURES.parents[2]))


if __name__ == "__main__":
    main()
