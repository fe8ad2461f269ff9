"""Benchmarks through the notebook face: ``%%gradcheck`` in a real IPython shell.

What the magic adds to a failing cell is compared with what the user would otherwise do: run the
cell again under anomaly mode. The traceback's display (IPython formats it for the screen and for
its history) is left out of every side: it is IPython's, the same with and without the magic. The
model lives in the shell's namespace, as in a notebook, so the undo log snapshots what a real
session holds.
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

ANOMALY = "with torch.autograd.detect_anomaly(check_nan=False):\n"

# The live-kernel verification of a fix is not built yet: when it is, this function takes the shell
# right after ``%%gradcheck`` diagnosed its failing cell and verifies the best fix of that diagnosis
# in the kernel; B8 then times it against one replay.
LIVE_VERIFICATION = ("inplace_magic.pipeline.kernel", "verify_best_fix")


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e3, 2)


class Shell:
    """A fresh IPython shell with the extension loaded; the traceback display is stubbed out."""

    def __init__(self, setup: str) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        self.shell = InteractiveShell(config=config)
        self.shell.showtraceback = lambda *args, **kwargs: None
        # IPython formats every failing cell's traceback for its history as well: display, not ours
        self.shell._format_exception_for_storage = lambda *args, **kwargs: {}
        self.shell.run_line_magic("load_ext", "inplace_magic")
        self.run(f"import sys\nsys.path.insert(0, {str(HERE)!r})\n{setup}", fails=False)

    def run(self, cell: str, fails: bool = True) -> float:
        return self.clocked(cell, fails)[0]

    def clocked(self, cell: str, fails: bool = True) -> tuple[float, float]:
        """Run ``cell``: its wall time and the main thread's CPU time (preemption on a loaded
        machine shows in the first, not in the second; the cell and the magic run on this thread)."""
        from IPython.utils.capture import capture_output

        start, cpu = time.perf_counter(), time.thread_time()
        with capture_output():
            result = self.shell.run_cell(cell, store_history=True)
        seconds, used = time.perf_counter() - start, time.thread_time() - cpu
        error = result.error_in_exec or result.error_before_exec
        if fails:
            assert isinstance(error, RuntimeError), error
        else:
            assert error is None, error
        return seconds, used

    def close(self) -> None:
        self.shell.run_line_magic("unload_ext", "inplace_magic")

    def interleaved(self, cells: dict[str, str], repeats: int) -> dict[str, float]:
        """Median wall time of each cell, and under ``cpu:KEY`` its median thread CPU time."""
        for cell in cells.values():
            self.run(cell)  # warm-up
        times: dict[str, list[float]] = {key: [] for key in cells}
        times.update({f"cpu:{key}": [] for key in cells})
        for _ in range(repeats):
            for key, cell in cells.items():
                wall, used = self.clocked(cell)
                times[key].append(wall)
                times[f"cpu:{key}"].append(used)
        return {key: statistics.median(samples) for key, samples in times.items()}


def _indented(body: str) -> str:
    return "".join(f"    {line}\n" for line in body.splitlines())


def model_setup(model: str) -> str:
    return f"import torch\nfrom models import make_model\nmodel, data = make_model({model!r}, buggy=True)\n"


# where what the magic adds goes, each a function the diagnosis calls (module, attribute path)
STAGES = {
    "re-execution": [("inplace_magic.replay.kernel", "KernelRerun.__call__")],
    "analysis": [("inplace_magic.pipeline.core", "diagnose")],
    "snapshot and restore": [
        ("inplace_magic.replay.undo", "ObjectSnapshot.take"),
        ("inplace_magic.replay.undo", "ObjectSnapshot.restore"),
        ("inplace_magic.replay.undo", "WriteLog.restore"),
    ],
    "display": [("inplace_magic.ipython.extension", "display_diagnosis")],
}


@contextlib.contextmanager
def stage_clock(spent: dict[str, float]) -> Iterator[None]:
    """While entered, the thread CPU time spent in each of :data:`STAGES` adds up in ``spent``."""
    put_back: list[tuple[Any, str, Any]] = []

    def clocked(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.thread_time() - start

        return run

    try:
        for stage, places in STAGES.items():
            for module_name, path in places:
                owner: Any = importlib.import_module(module_name)
                *outer, name = path.split(".")
                for part in outer:
                    owner = getattr(owner, part)
                raw = owner.__dict__[name]
                put_back.append((owner, name, raw))
                if isinstance(raw, classmethod):
                    setattr(owner, name, classmethod(clocked(stage, raw.__func__)))
                else:
                    setattr(owner, name, clocked(stage, raw))
        yield
    finally:
        for owner, name, raw in reversed(put_back):
            setattr(owner, name, raw)


def magic_cost(model: str, repeats: int, body: str | None = None, setup: str | None = None) -> dict[str, Any]:
    """B2 through ``%%gradcheck --no-fix``: what the magic adds to the failing cell, against a rerun
    of that cell under anomaly mode; then, in runs of their own (the clocks cost a little), where it
    goes (:data:`STAGES`, thread CPU per diagnosis)."""
    from models import STEP_CELL

    body = body or STEP_CELL
    shell = Shell(setup or model_setup(model))
    magic = "%%gradcheck --no-fix\n" + body
    spent: dict[str, float] = {}
    try:
        medians = shell.interleaved(
            {"plain": body, "anomaly": ANOMALY + _indented(body), "magic": magic}, repeats
        )
        clocked: dict[str, list[float]] = {"plain": [], "magic": []}
        per_run: dict[str, list[float]] = {stage: [] for stage in STAGES}
        with stage_clock(spent):  # a plain cell calls none of the stages: both alternate as above
            for _ in range(repeats):
                clocked["plain"].append(shell.clocked(body)[1])
                before = dict(spent)
                clocked["magic"].append(shell.clocked(magic)[1])
                for stage in STAGES:
                    per_run[stage].append(spent.get(stage, 0.0) - before.get(stage, 0.0))
    finally:
        shell.close()
    added = medians["magic"] - medians["plain"]
    added_cpu = medians["cpu:magic"] - medians["cpu:plain"]
    # medians, as everywhere here: one preempted run must not move a stage
    stages = {stage: round(statistics.median(times) * 1e3, 2) for stage, times in per_run.items()}
    # what these runs' magic added that no stage holds (their own plain cell: the machine's speed
    # drifts between the runs above and these)
    added_here = statistics.median(clocked["magic"]) - statistics.median(clocked["plain"])
    stages["the rest"] = round(added_here * 1e3 - sum(stages.values()), 2)
    return {
        "stages_cpu_ms": stages,
        "plain_ms": round(medians["plain"] * 1e3, 2),
        "anomaly_ms": round(medians["anomaly"] * 1e3, 2),
        "magic_adds_ms": round(added * 1e3, 2),
        "adds_vs_anomaly": round(added / medians["anomaly"], 2),
        "magic_adds_cpu_ms": round(added_cpu * 1e3, 2),
        "adds_vs_anomaly_cpu": round(added_cpu / medians["cpu:anomaly"], 2),
        "runs": repeats,
    }


# objects a session holds that the failing cell never reads: the undo log must not pay for them
UNRELATED = """
import torch.nn as nn
others = [nn.Sequential(*[nn.Linear(8, 8) for _ in range(20)]) for _ in range(20)]
history = [float(i) for i in range(100_000)]
lookup = {i: [i] for i in range(20_000)}
"""


def undo_cost(repeats: int) -> dict[str, Any]:
    """B6: what the magic adds on the tiny ResNet in a small session and in one that also holds
    20 unrelated models and 120,000 container items the cell never reads."""
    small = magic_cost("resnet-tiny", repeats)
    large = magic_cost("resnet-tiny", repeats, setup=model_setup("resnet-tiny") + UNRELATED)
    return {
        "small_session_ms": small["magic_adds_ms"],
        "large_session_ms": large["magic_adds_ms"],
        "large_vs_small": round(large["magic_adds_ms"] / small["magic_adds_ms"], 2),
        "runs": repeats,
    }


LONG_CELL = (
    "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
    "for step in range(100):  # the in-place bug fails the first step\n"
    "    model.zero_grad(set_to_none=True)\n"
    "    model(data).float().pow(2).mean().backward()\n"
    "    opt.step()\n"
)


def long_cell_cost(repeats: int) -> dict[str, Any]:
    """B7: a 100-step training cell failing at its first step costs one step's diagnosis."""
    one = magic_cost("resnet-tiny", repeats)
    long = magic_cost("resnet-tiny", repeats, body=LONG_CELL)
    return {
        "one_step_ms": one["magic_adds_ms"],
        "hundred_steps_ms": long["magic_adds_ms"],
        "long_vs_one": round(long["magic_adds_ms"] / one["magic_adds_ms"], 2),
        "one_step_cpu_ms": one["magic_adds_cpu_ms"],
        "hundred_steps_cpu_ms": long["magic_adds_cpu_ms"],
        "long_vs_one_cpu": round(long["magic_adds_cpu_ms"] / one["magic_adds_cpu_ms"], 2),
        "runs": repeats,
    }


def _live_verification() -> Callable[[Any], Any] | None:
    module_name, function = LIVE_VERIFICATION
    module = importlib.import_module(module_name)
    found = getattr(module, function, None)
    return found if callable(found) else None


def fix_verification_cost(repeats: int) -> dict[str, Any]:
    """B8: verifying the best fix, against one replay. The sandbox (today's verification, a separate
    process per candidate) is measured for reference; the live kernel's row fills in once
    :data:`LIVE_VERIFICATION` exists."""
    from inplace_magic.pipeline.core import check_cells, find_fixes
    from inplace_magic.replay.cells import read_cells

    cells = read_cells(str(HERE.parent / "examples" / "resnet_skip_connection.py"))
    replay_s: list[float] = []
    sandbox_s: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = check_cells(cells, with_fixes=False)
        replay_s.append(time.perf_counter() - start)
        assert result.diagnosis is not None
        start = time.perf_counter()
        fixes = find_fixes(cells, result.diagnosis, None, verify=True)
        sandbox_s.append(time.perf_counter() - start)
        assert fixes and fixes[0].get("verified"), fixes[:1]
    out: dict[str, Any] = {
        "replay_ms": _median_ms(replay_s),
        "sandbox_ms": _median_ms(sandbox_s),
        "sandbox_vs_replay": round(statistics.median(sandbox_s) / statistics.median(replay_s), 1),
        "live_vs_replay": None,
        "runs": repeats,
    }
    verify = _live_verification()
    if verify is not None:
        out["live_vs_replay"] = _live_cost(verify, repeats)
    return out


def _live_cost(verify: Callable[[Any], Any], repeats: int) -> float:
    from models import STEP_CELL

    shell = Shell(model_setup("resnet-tiny"))
    try:
        replays, verifications = [], []
        for _ in range(repeats):
            plain = shell.run(STEP_CELL)
            replays.append(shell.run("%%gradcheck --no-fix\n" + STEP_CELL) - plain)
            start = time.perf_counter()
            verify(shell.shell)
            verifications.append(time.perf_counter() - start)
    finally:
        shell.close()
    return round(statistics.median(verifications) / statistics.median(replays), 2)
