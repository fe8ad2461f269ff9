"""Benchmarks of inplace_magic: what a diagnosis costs, its memory, and how analysis scales.

Usage: ``python benchmarks/run.py [--quick]`` (or ``make bench``). Prints a Markdown table and writes
it, with the raw numbers, to ``benchmarks/results/``. Ratios are taken within one run with the
configurations interleaved, since these machines are noisy; one intra-op thread. The rows that go
through the notebook face are in :mod:`notebook` and :mod:`fresh`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fresh import first_and_second
from models import make_step, synthetic
from notebook import fix_verification_cost, long_cell_cost, magic_cost, undo_cost
from verification import verification_row

from inplace_magic.diagnose.analysis import diagnose
from inplace_magic.panel.state import build_state
from inplace_magic.pipeline.core import PassTimes, first_pass_pays, replay
from inplace_magic.record.failed_graph import stale_in_failed_run
from inplace_magic.record.recorder import Recorder
from inplace_magic.replay.run import SourceMap

RESULTS = Path(__file__).resolve().parent / "results"


def _fails(step: Callable[[], None]) -> BaseException:
    try:
        step()
    except RuntimeError as exc:
        return exc
    raise AssertionError("the buggy step did not fail")


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _clocks(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall time and this thread's CPU time of ``fn()``. On a loaded machine a run of a few
    milliseconds is often preempted for one or more: the wall clock then counts another process's
    time, the thread's CPU clock does not (everything here runs on this thread: one intra-op
    thread, and the diagnosis is Python on the caller's thread)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def passthrough_cost(model: str, repeats: int) -> dict[str, Any]:
    """B1: ``%%gradcheck`` on a healthy training cell vs the same cell without it (real IPython)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "inplace_magic")
    shell.user_ns["step"] = make_step(model, buggy=False)
    cells = {"plain": "step()\n", "gradcheck": "%%gradcheck\nstep()\n"}

    def run(cell: str) -> None:
        result = shell.run_cell(cell, store_history=False, silent=False)  # events fire, as in a kernel
        assert result.success, result.error_in_exec

    for cell in cells.values():
        run(cell)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in cells}
    for _ in range(repeats):
        for key, cell in cells.items():
            times[key].append(_time(lambda cell=cell: run(cell)))  # type: ignore[misc]
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "plain_ms": round(medians["plain"] * 1e3, 2),
        "gradcheck_x": round(medians["gradcheck"] / medians["plain"], 3),
        "runs": repeats,
    }


def diagnosis_cost(model: str, repeats: int) -> dict[str, Any]:
    """B2: the replay + analysis the user waits for, vs a plain failing run and anomaly mode; each
    pass of the diagnosis timed apart (the first pass of saved-tensor hooks, the recording up to
    where the diagnosis has what it reads, a recording of everything when that one missed it, the
    analysis), and the recorder that records everything (every aten op of forward and backward,
    every torch call) for comparison."""
    step = make_step(model, buggy=True)
    original = _fails(step)

    def rerun() -> BaseException | None:
        try:
            step()
        except RuntimeError as exc:
            return exc
        return None

    def plain() -> None:
        _fails(step)

    def anomaly() -> None:
        with torch.autograd.detect_anomaly(check_nan=False):
            _fails(step)

    passes: dict[str, list[float]] = {"graph": [], "first": [], "record": [], "again": [], "analysis": []}
    # as the CLI decides it: the failed run's graph, else from how long the failing run took
    graph_says = stale_in_failed_run(original) is not None
    two_passes = first_pass_pays(statistics.median(_time(plain) for _ in range(3)))

    def diagnosis() -> None:
        times = PassTimes()
        started = time.perf_counter()
        known = stale_in_failed_run(original)  # the CLI reads it at every check, before the replay
        passes["graph"].append(time.perf_counter() - started)
        result = replay(
            rerun, original, SourceMap(), dict, None, pass_times=times, first_pass=two_passes, known=known
        )
        # the diagnoses name the writer, the saver and the merge (each model's bug breaks a branch)
        assert result is not None and result.reproduced and result.inplace is not None
        assert result.saved_by is not None and result.skip is not None
        for name, samples in passes.items():
            if name != "graph":
                samples.append(getattr(times, name))

    def everything() -> None:
        with Recorder() as recorder:
            rerun()
        result = diagnose(recorder.trace, original, SourceMap(), {})
        assert result is not None and result.inplace is not None

    configs = {"plain": plain, "anomaly": anomaly, "diagnosis": diagnosis, "everything": everything}
    for fn in configs.values():
        fn()  # warm-up
    for samples in passes.values():
        samples.clear()
    times: dict[str, list[float]] = {k: [] for k in configs}
    cpu: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(repeats):
        for key, fn in configs.items():
            wall, used = _clocks(fn)
            times[key].append(wall)
            cpu[key].append(used)
    medians = {k: statistics.median(v) for k, v in times.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpu.items()}
    base = medians["plain"]
    return {
        "plain_ms": round(base * 1e3, 2),
        "anomaly_x": round(medians["anomaly"] / base, 2),
        # each pass's median, a ratio to the plain run: they add up to about the diagnosis
        **{f"{name}_x": round(statistics.median(samples) / base, 2) for name, samples in passes.items()},
        "diagnosis_x": round(medians["diagnosis"] / base, 2),
        "diagnosis_x_cpu": round(cpu_medians["diagnosis"] / cpu_medians["plain"], 2),
        "diagnosis_vs_anomaly": round(medians["diagnosis"] / medians["anomaly"], 2),
        "diagnosis_vs_anomaly_cpu": round(cpu_medians["diagnosis"] / cpu_medians["anomaly"], 2),
        "everything_x": round(medians["everything"] / base, 2),
        "two_passes": two_passes and not graph_says,
        "graph_says": graph_says,
        "runs": repeats,
    }


def memory_child(model: str, mode: str) -> None:
    """B3 (child process): peak RSS growth of one failing step, plain or diagnosed."""
    step = make_step(model, buggy=True)
    before = _reset_peak_rss()
    original = _fails(step)  # a diagnosis always follows the plain failing run
    # as the CLI does: the first run's graph, held by the traceback's frames, is released first
    traceback.clear_frames(original.__traceback__)
    if mode == "diagnosis":
        with Recorder() as recorder:
            _fails(step)
        diagnose(recorder.trace, original, SourceMap())
    after = _peak_rss()
    print(json.dumps({"before_kib": before, "after_kib": after}))


def _peak_rss() -> int:
    """Peak resident set (KiB) since the last reset: VmHWM on Linux, ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> int:
    """Reset the high-water mark so that import-time peaks do not hide the step's (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    return _peak_rss()


def memory(model: str) -> dict[str, Any]:
    out = {}
    for mode in ("plain", "diagnosis"):
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", model, mode],
            capture_output=True,
            text=True,
            check=True,
        )
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    plain_peak, diag_peak = out["plain"]["after_kib"], out["diagnosis"]["after_kib"]
    plain_growth = plain_peak - out["plain"]["before_kib"]
    diag_growth = diag_peak - out["diagnosis"]["before_kib"]
    return {
        "peak_rss_x": round(diag_peak / plain_peak, 3),
        "growth_plain_mib": round(plain_growth / 1024, 1),
        "growth_diagnosis_mib": round(diag_growth / 1024, 1),
        "growth_x": round(diag_growth / max(plain_growth, 1), 2),
    }


def scale(ops: int) -> dict[str, Any]:
    """B4: analysis time, trace memory and payload size against the number of recorded ops."""
    step = synthetic(ops)
    original = _fails(step)
    tracemalloc.start()
    with Recorder() as recorder:
        _fails(step)
    trace_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    start = time.perf_counter()
    diagnosis = diagnose(recorder.trace, original, SourceMap())
    analysis = time.perf_counter() - start
    assert diagnosis is not None and diagnosis.skip is not None
    # what the panel is sent: its state, built from the diagnosis as the kernel builds it
    payload = len(json.dumps(build_state(json.loads(json.dumps(diagnosis.to_json(), default=str)))))
    return {
        "recorded_ops": len(recorder.trace.ops),
        "analysis_s": round(analysis, 3),
        "trace_mib": round(trace_bytes / 2**20, 1),
        "payload_kb": round(payload / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a smoke run)")
    parser.add_argument(
        "--only", choices=("B2",), help="only these rows (B2: the diagnosis, also through %%%%gradcheck)"
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # anomaly mode warns at every failing backward, with the forward's whole traceback
    warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
    warnings.filterwarnings("ignore", message="Error detected in")
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    repeats = (3, 5) if args.quick else (9, 15)
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "B1_passthrough": {},
        "B2_diagnosis": {},
        "B2_magic": {},
        "B3_memory": {},
        "B4_scale": {},
    }
    for model in ("resnet", "transformer", "resnet-tiny", "transformer-tiny"):
        results["B2_diagnosis"][model] = diagnosis_cost(model, repeats[1] if "tiny" in model else repeats[0])
    for model in ("resnet-tiny", "transformer-tiny"):
        results["B2_magic"][model] = magic_cost(model, repeats[1])
    if args.only == "B2":
        table = render_b2(results)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "b2.json").write_text(json.dumps(results, indent=2))
        (RESULTS / "b2.md").write_text(table)
        print(table)
        return
    for model in ("resnet", "transformer"):
        results["B1_passthrough"][model] = passthrough_cost(model, repeats[1])
    for model in ("resnet", "transformer"):
        results["B3_memory"][model] = memory(model)
    for ops in (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000):
        results["B4_scale"][ops] = scale(ops)
    results["B6_undo"] = undo_cost(repeats[1])
    results["B7_long_cell"] = long_cell_cost(repeats[1])
    results["B8_fix_verification"] = fix_verification_cost(1 if args.quick else 3)
    results["B9_first_diagnosis"] = [first_and_second(options) for options in ("--no-fix", "")]
    RESULTS.mkdir(exist_ok=True)
    table = render(results) + verification_row(results, repeats[1])
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text(table)
    print(table)


def render_b2(results: dict[str, Any]) -> str:
    """The B2 rows: the diagnosis with each of its passes, and the same through ``%%gradcheck``."""
    lines = [
        "| B2 diagnosis (replay + analysis) | plain failing run | anomaly mode | failed graph | first pass "
        "| record | again | analyse | diagnosis | diagnosis / anomaly | in thread CPU time: diagnosis / "
        "plain, / anomaly | recording everything | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, r in results["B2_diagnosis"].items():
        # no first pass where the failed graph said which tensor, or for a compute-bound run
        # (pipeline.core.first_pass_pays): its column says so; "none" too where the graph said nothing
        passes = " | ".join(
            "none"
            if (name == "first" and not r["two_passes"]) or (name == "graph" and not r.get("graph_says"))
            else f"{r.get(f'{name}_x', 0.0)}x"
            for name in ("graph", "first", "record", "again", "analysis")
        )
        lines.append(
            f"| {model} | {r['plain_ms']} ms | {r['anomaly_x']}x | {passes} | {r['diagnosis_x']}x "
            f"| {r['diagnosis_vs_anomaly']}x | {r['diagnosis_x_cpu']}x, {r['diagnosis_vs_anomaly_cpu']}x "
            f"| {r['everything_x']}x "
            f"| {r['runs']} |"
        )
    lines += [
        "",
        "| B2 through `%%gradcheck --no-fix` | plain failing cell | the cell under anomaly mode "
        "| what the magic adds | adds / anomaly cell | the same in thread CPU time | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, r in results["B2_magic"].items():
        lines.append(
            f"| {model} | {r['plain_ms']} ms | {r['anomaly_ms']} ms | {r['magic_adds_ms']} ms | "
            f"{r['adds_vs_anomaly']}x | {r['adds_vs_anomaly_cpu']}x | {r['runs']} |"
        )
    stages = next(iter(results["B2_magic"].values()), {}).get("stages_cpu_ms", {})
    if stages:
        lines += [
            "",
            "| where the magic's CPU goes, per diagnosis (runs of their own) | " + " | ".join(stages) + " |",
            "|---|" + "---|" * len(stages),
        ]
        for model, r in results["B2_magic"].items():
            lines.append(
                f"| {model} | " + " | ".join(f"{ms} ms" for ms in r["stages_cpu_ms"].values()) + " |"
            )
    return "\n".join(lines) + "\n"


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}; torch {results['torch']}; Python {results['python']}.",
        "",
        "| B1 healthy cell | plain | `%%gradcheck` | runs |",
        "|---|---|---|---|",
    ]
    for model, r in results["B1_passthrough"].items():
        lines.append(f"| {model} | {r['plain_ms']} ms | {r['gradcheck_x']}x | {r['runs']} |")
    lines += ["", *render_b2(results).splitlines()]
    lines += [
        "",
        "| B3 memory | peak RSS diagnosis / plain | growth plain | growth diagnosis |",
        "|---|---|---|---|",
    ]
    for model, r in results["B3_memory"].items():
        growth = f"{r['growth_plain_mib']} MiB | {r['growth_diagnosis_mib']} MiB"
        lines.append(f"| {model} | {r['peak_rss_x']}x | {growth} |")
    lines += ["", "| B4 recorded ops | analysis | trace memory | panel state |", "|---|---|---|---|"]
    for _, r in results["B4_scale"].items():
        lines.append(
            f"| {r['recorded_ops']} | {r['analysis_s']} s | {r['trace_mib']} MiB | {r['payload_kb']} KB |"
        )
    undo = results["B6_undo"]
    long = results["B7_long_cell"]
    fix = results["B8_fix_verification"]
    live = "in B10" if fix["live_vs_replay"] is None else f"{fix['live_vs_replay']}x"
    lines += [
        "",
        "| B6 undo log (resnet-tiny, what the magic adds) | small session | + 20 models, 120k items unread "
        "| large / small | runs |",
        "|---|---|---|---|---|",
        f"| | {undo['small_session_ms']} ms | {undo['large_session_ms']} ms | {undo['large_vs_small']}x "
        f"| {undo['runs']} |",
        "",
        "| B7 long cell (resnet-tiny, what the magic adds) | one step | 100 steps, failing at the first "
        "| long / one | the same in thread CPU time | runs |",
        "|---|---|---|---|---|---|",
        f"| | {long['one_step_ms']} ms | {long['hundred_steps_ms']} ms | {long['long_vs_one']}x "
        f"| {long['one_step_cpu_ms']} ms, {long['hundred_steps_cpu_ms']} ms: {long['long_vs_one_cpu']}x "
        f"| {long['runs']} |",
        "",
        "| B8 verifying the best fix (examples/resnet_skip_connection.py) | one replay | sandbox "
        "| sandbox / replay | live kernel / replay | runs |",
        "|---|---|---|---|---|---|",
        f"| | {fix['replay_ms']} ms | {fix['sandbox_ms']} ms | {fix['sandbox_vs_replay']}x | {live} "
        f"| {fix['runs']} |",
        "",
        "| B9 fresh kernel (resnet-tiny) | first diagnosis | second | first - second |",
        "|---|---|---|---|",
    ]
    for r in results["B9_first_diagnosis"]:
        lines.append(
            f"| `{r['options']}` | {r['first_s']} s | {r['second_s']} s | {r['first_minus_second_s']} s |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
