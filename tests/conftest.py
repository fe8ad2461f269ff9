"""Shared fixtures: where the real-world cases live."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/cases beside the checkout (as on developer machines and CI); override for other layouts
SHARED_CASES = Path(os.environ.get("INPLACE_MAGIC_SHARED_CASES", ROOT.parent / "shared" / "cases"))
OWN_CASES = ROOT / "tests" / "cases"
# Our own crashes fail the tests instead of hiding behind an internal-error note (see
# inplace_magic/pipeline/internal.py); CLI processes, sandboxes and kernels the tests start inherit it.
os.environ.setdefault("INPLACE_MAGIC_INTERNAL_ERRORS", "raise")
# pytest-xdist's workers start with SIGINT ignored, and every process a test starts inherits that:
# Ctrl-C would reach neither the code under test nor the CLI's child. Give the worker Python's own
# handler back (a handler function, unlike SIG_IGN, is reset to the default in a child at exec).
signal.signal(signal.SIGINT, signal.default_int_handler)


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


# -- running the suite on several cores (pytest-xdist, ``--dist loadgroup``: see the Makefile)


# Module-scoped fixtures that are cheap to make again (a kernel, a shell, a zygote: seconds) and whose
# tests each start from a reset (a zygote's runs are forks of it): every worker makes its own, and
# their tests spread over the workers.
PER_WORKER = {"test_kernel.kernel", "test_magic.ip", "test_fix_cases.python", "test_zygote.warm"}
# Module-scoped caches that run a case on first use: the tests of one case stay on one worker.
PER_CASE = {"test_magic.case_runs"}


def _shared_fixtures(item: pytest.Item) -> list[str]:
    """The fixtures this test shares with others: wider than one test, and defined in tests/."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    shared = []
    for name, definitions in info.name2fixturedefs.items():
        for definition in definitions:
            where = Path(definition.func.__code__.co_filename).resolve()
            if definition.scope != "function" and where.is_relative_to(ROOT / "tests"):
                shared.append(f"{where.stem}.{name}")
    return sorted(set(shared) - PER_WORKER)


def _case(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "case" not in callspec.params:
        return None
    case = callspec.params["case"]
    return str(getattr(case, "stem", case))


def _group(item: pytest.Item) -> str | None:
    shared, case = _shared_fixtures(item), _case(item)
    if shared and case is not None and set(shared) <= PER_CASE:
        return f"{'+'.join(shared)}:{case}"
    if shared:
        return "+".join(shared)
    module = getattr(item, "module", None)
    # a module that memoizes per case (a module-level ``functools.cache``, as the library cases do:
    # one check serving one test per field) shares that check between the tests of one case
    memoized = module is not None and any(
        isinstance(value, functools._lru_cache_wrapper) for value in vars(module).values()
    )
    return f"{module.__name__}:{case}" if memoized and case is not None else None


# The end-to-end modules that start many real processes (tests/suite_profile.py measured them at minutes
# of CPU): marked slow, so `make test-quick` leaves them out; `make test` and CI run them.
SLOW_MODULES = {"test_distributed", "test_fix_cases", "test_lab_wheel", "test_replay_state"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks we add here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that share an expensive fixture (a kernel, a shell, a built wheel, the runs of every case,
    a memoized check) run on one worker, so that it is made once; every other test goes to whichever
    worker is free. Derived from fixture scopes and caches, so a new one is grouped without a list."""
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = _group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config.option, "loadgroup", False):  # set in each worker under --dist loadgroup
        for item in items:
            _carry_group_in_the_node_id(item)


def _carry_group_in_the_node_id(item: pytest.Item) -> None:
    """``--dist loadgroup`` groups by an ``@group`` suffix of the node id each worker reports. xdist 3.8
    writes it to ``item._nodeid``, which pytest 9 no longer reads (the id lives in ``item._id``): every
    ``xdist_group`` was silently ignored, and each worker made every module-scoped kernel, shell and
    cache that one of its tests needed (tests/suite_profile.py showed test_magic's cases run twice).
    The suffix is written where pytest reads it, in xdist's own format; nothing is added twice."""
    from _pytest.nodeid import NodeId

    names = sorted(
        {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
    )
    if not names:
        return
    suffix = "@" + "_".join(names)
    if not item.nodeid.endswith(suffix):
        item._id = NodeId.parse(item.nodeid + suffix)
