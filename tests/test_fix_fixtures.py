"""Golden files: realistic cells before and after each kind of fix (TorchFix-style, one per fixture).

Inputs are ``tests/fixtures/fix/<name>.py`` + ``<name>.json``; the expected output is
``<name>.fixed.py``. After an intended change, regenerate with
``.venv/bin/python tests/regenerate_fix_fixtures.py`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from regenerate_fix_fixtures import fixed_text, inputs

from inplace_magic.fix.model import FixKind


def test_every_fix_kind_has_a_fixture() -> None:
    # derived from the kinds the contract declares, so a new kind without a golden file fails here
    kinds = {json.loads(p.with_suffix(".json").read_text())["kind"] for p in inputs()}
    assert set(get_args(FixKind)) - kinds == set()
    assert kinds - set(get_args(FixKind)) == set()


@pytest.mark.parametrize("source", inputs(), ids=lambda p: p.stem)
def test_fixture(source: Path) -> None:
    expected = source.with_name(source.stem + ".fixed.py")
    assert expected.exists(), "run tests/regenerate_fix_fixtures.py"
    assert fixed_text(source) == expected.read_text()
