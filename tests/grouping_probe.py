"""Run by tests/test_suite_grouping.py only (its name does not match ``test_*.py``): a module-scoped
fixture that says each time it is made, and the tests that share it, beside tests that share nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_LOG = Path(os.environ.get("GROUPING_PROBE_LOG", os.devnull))


def _say(what: str) -> None:
    with _LOG.open("a", encoding="utf-8") as log:
        log.write(f"{what} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\n")


@pytest.fixture(scope="module")
def shared() -> str:
    _say("made")
    return "made once"


@pytest.mark.parametrize("n", range(6))
def test_shares_the_fixture(shared: str, n: int) -> None:
    _say(f"shared-{n}")
    assert shared == "made once"


@pytest.mark.parametrize("n", range(6))
def test_shares_nothing(n: int) -> None:
    _say(f"alone-{n}")
