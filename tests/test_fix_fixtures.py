"""Golden files: realistic cells before and after each kind of fix (TorchFix-style, one per fixture).

Inputs are ``tests/fixtures/fix/<name>.py`` + ``<name>.json``; the expected output is
``<name>.fixed.py``. After an intended change, regenerate with
``.venv/bin/python tests/regenerate_fix_fixtures.py`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from regenerate_fix_fixtures import fixed_text, inputs


def test_every_fix_kind_has_a_fixture() -> None:
    import json

    kinds = {json.loads(p.with_suffix(".json").read_text())["kind"] for p in inputs()}
    assert kinds >= {"inplace_kwarg", "augmented_assign", "inplace_method", "clone_before", "no_grad"}
    assert kinds >= {"reorder_step", "view_clone", "allow_mutation"}


@pytest.mark.parametrize("source", inputs(), ids=lambda p: p.stem)
def test_fixture(source: Path) -> None:
    expected = source.with_name(source.stem + ".fixed.py")
    assert expected.exists(), "run tests/regenerate_fix_fixtures.py"
    assert fixed_text(source) == expected.read_text()
