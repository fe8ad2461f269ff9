"""Shared fixtures: where the real-world cases live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/cases beside the checkout (as on developer machines and CI); override for other layouts
SHARED_CASES = Path(os.environ.get("INPLACE_MAGIC_SHARED_CASES", ROOT.parent / "shared" / "cases"))
OWN_CASES = ROOT / "tests" / "cases"


def case_ids(folder: Path) -> list[Path]:
    """Every ``<id>.py`` with an ``<id>.json`` beside it: new cases are picked up without code changes."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if p.with_suffix(".json").exists())


def positive_cases() -> list[Path]:
    return case_ids(SHARED_CASES) + case_ids(OWN_CASES)


def negative_cases() -> list[Path]:
    return case_ids(SHARED_CASES / "negatives") + case_ids(OWN_CASES / "negatives")


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``inplace-magic`` in this process; returns (exit code, stdout, stderr)."""
    from inplace_magic.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
