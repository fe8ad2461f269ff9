"""The suite's own scheduling (tests/conftest.py): under ``--dist loadgroup`` the tests that share a
module-scoped fixture run on one worker, so the fixture (a kernel, a shell, every case's runs) is made
once. With pytest 9 and xdist 3.8 the grouping was silently lost and every worker made its own; only a
real run on two workers shows whether it holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_tests_sharing_a_module_fixture_run_on_one_worker_and_the_rest_spread(tmp_path: Path) -> None:
    log = tmp_path / "log"
    env = {**os.environ, "GROUPING_PROBE_LOG": str(log)}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-p",
            "no:cacheprovider",
            "tests/grouping_probe.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line.split() for line in log.read_text().splitlines()]
    made = [worker for what, worker in lines if what == "made"]
    assert len(made) == 1, lines  # made once, not once per worker
    assert {worker for what, worker in lines if what.startswith("shared-")} == set(made)
    assert len([1 for what, _ in lines if what.startswith("shared-")]) == 6
    # the tests that share nothing are not pinned with them: both workers ran some
    assert {worker for what, worker in lines} == {"gw0", "gw1"}, lines
