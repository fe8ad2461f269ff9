"""One ``inplace-magic check`` per rank of a DDP launch (torchrun, or ``--nproc``), and one report.

Every rank runs its cells as the single-process check does. Then the ranks meet on the launcher's
store and compare how their runs ended. When one raised an in-place error, every rank replays in
lockstep: a failing rank under the recorder (:func:`.core.check_cells`, through its replay scope),
every other rank plainly, so that each collective of the replay (DDP's construction broadcast, its
gradient all-reduce) has all its ranks. A rank that does not come to the meeting (it exited, or it
waits in a collective for a rank that failed before joining it) cannot replay: the failing ranks
then replay alone, in a world of one, and the report says so. Each failing rank diagnoses its own
error; the ranks meet again, and the lowest failing rank speaks for all: its report, which ranks
failed and where they differ, and fixes verified by re-running every rank of the fixed code here.

Where the ranks' views could differ (one rank's wait timed out, another's did not) they act on one
decision, the first one proposed on the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..diagnose.diagnosis import Diagnosis, Location
from ..replay.cells import Cell
from ..replay.ddp_watch import Construction, watch_ddp
from ..replay.launch import LocalLaunch
from ..replay.process_group import (
    Missing,
    RankChannel,
    World,
    freeze_what_is_loaded,
    rank_timeout,
    release_groups,
    replay_groups,
)
from ..replay.run import (
    Dialect,
    RandomState,
    SourceMap,
    as_script,
    cell_filename,
    compile_cells,
    dialect_of,
    fresh_namespace,
    run_program,
)
from ..replay.time_limit import TimeLimitExceeded, limit_for, time_limit
from .core import CheckResult, Status, Watcher, check_cells, find_fixes

REPLAY = "0"  # the replay's process-group prefix: every rank of one launch replays once
MAX_LAUNCH_CHECKS = 3  # fixes re-run under the launch, in rank order, until one passes
_LAUNCH_GRACE_S = 30.0  # a fix's launch may take its time limit and this (starting N interpreters)
_SEVERITY = {"inplace_error": 0, "other_error": 1, "ok": 2, "missing": 3}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class RankResult:
    """How one rank's check ended, as exchanged between the ranks (plain JSON data)."""

    rank: int
    status: str  # ok, inplace_error, other_error, or missing (exited / did not answer)
    error: dict[str, Any] | None = None
    diagnosis: dict[str, Any] | None = None
    replay: str | None = None  # how this rank took part in the replay
    reason: str | None = None  # why a rank is missing
    same_as: int | None = None  # a lower rank with the same writer, saver and tensor

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_answer(cls, rank: int, answer: dict[str, Any] | Missing) -> RankResult:
        if isinstance(answer, Missing):
            return cls(rank, "missing", reason=answer.reason)
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in answer.items() if k in fields})


@dataclass
class DistributedCheck:
    """The check of one launch, as seen from one rank; ``reporter`` is the rank that prints it."""

    world: World
    channel: RankChannel
    own: CheckResult
    ranks: list[RankResult]
    reporter: int
    timeout_s: float  # a rank's wait for the others, and the limit on each replay collective
    wait_s: float  # the wait for the others' replays
    notes: list[str] = field(default_factory=list)

    @property
    def is_reporter(self) -> bool:
        return self.world.rank == self.reporter

    @property
    def failed_ranks(self) -> list[int]:
        return [r.rank for r in self.ranks if r.status == "inplace_error"]

    @property
    def status(self) -> Status:
        """The launch's outcome: an in-place error on any rank is the finding (exit 1) even when
        other ranks failed otherwise (often as a consequence: a peer left a collective); else any
        other failure, a rank that exited or never answered included (exit 2); else ok."""
        if self.failed_ranks:
            return "inplace_error"
        if any(r.status in ("other_error", "missing") for r in self.ranks):
            return "other_error"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        """The single-process JSON of the reporter's diagnosis, plus the ranks."""
        out = self.own.to_json()
        out["status"] = self.status
        if out["error"] is None and self.status == "other_error":
            missing = next((r for r in self.ranks if r.status == "missing"), None)
            reason = missing.reason if missing else "a rank failed"
            out["error"] = {"type": "RankLost", "message": reason, "cell": None, "line": None}
        out["notes"] = [*self.notes, *out.get("notes", [])]
        out["world_size"] = self.world.world_size
        out["launcher"] = self.world.launcher
        out["reporter"] = self.reporter
        out["failed_ranks"] = self.failed_ranks
        out["ranks"] = [r.to_json() for r in self.ranks]
        return out


class _RankWatcher:
    """The supervising process's watcher (:class:`.core.Watcher`), told of a rank's longer stages:
    the replay begins with a meeting of the ranks, which may take the rank timeout first."""

    def __init__(self, watcher: Watcher, started: float, time_limit_s: float | None) -> None:
        self.watcher, self.started, self.time_limit_s = watcher, started, time_limit_s

    def cell(self, index: int) -> None:
        self.watcher.cell(index)

    def stage(self, name: str, seconds: float, provisional: CheckResult) -> None:
        meeting = rank_timeout(time.monotonic() - self.started, self.time_limit_s)
        self.watcher.stage(name, seconds + meeting, provisional)


def check_distributed(
    cells: list[Cell],
    script_path: str | None,
    *,
    with_fixes: bool,
    world: World,
    time_limit_s: float | None = None,
    skip_shell: bool = False,
    watcher: Watcher | None = None,
) -> DistributedCheck:
    """Check ``cells`` as rank ``world.rank`` of a launch; every rank of the launch must call this.

    ``time_limit_s`` (``--time-limit``) bounds each re-execution as in a single process, and is the
    rank timeout unless ``INPLACE_MAGIC_RANK_TIMEOUT`` is set; ``watcher`` hears each stage with
    the time it may take (the rank's part under a supervising process, :mod:`inplace_magic.cli`).
    """
    freeze_what_is_loaded()  # every collection of the run's groups below then walks the user's objects only
    channel = RankChannel.connect(world)
    dialect = dialect_of(cells, script_path)
    random_state = RandomState.capture()  # what check_cells captures too: nothing runs in between
    started = time.monotonic()
    took: dict[str, Any] = {}

    @contextlib.contextmanager
    def failing_rank_replay() -> Iterator[None]:
        took["first_s"] = time.monotonic() - started
        took["decision"] = decision = _meet(channel, "inplace_error", took["first_s"], time_limit_s)
        alone = bool(decision["missing"])
        took["replay"] = (
            f"replayed alone under the recorder ({_ALONE})" if alone else "replayed under the recorder"
        )
        timeout = rank_timeout(took["first_s"], time_limit_s)
        with watch_ddp() as constructions, replay_groups(world, channel, REPLAY, timeout, alone=alone):
            took["constructions"] = constructions
            yield

    own = check_cells(
        cells,
        script_path,
        with_fixes=False,
        time_limit_s=time_limit_s,
        dialect=dialect,
        skip_shell=skip_shell,
        watcher=_RankWatcher(watcher, started, time_limit_s) if watcher is not None else None,
        replay_scope=failing_rank_replay,
    )
    first_s = took.get("first_s", time.monotonic() - started)
    timeout = rank_timeout(first_s, time_limit_s)
    limit = limit_for(first_s, time_limit_s)
    replay = took.get("replay")
    if own.exception is not None:
        _drop_namespace(own.exception)
    if "decision" in took:  # this rank failed in place and came to the replay's meeting
        release_groups()  # the replay's group, held by the replay's namespace until now
        decision = took["decision"]
    else:
        if watcher is not None:  # the meeting, then a replay served to the others
            watcher.stage("ranks", 2 * timeout, own)
        decision = _meet(channel, own.status, first_s, time_limit_s)
        if decision["replay"] and not decision["missing"] and own.status != "inplace_error":
            replay = _serve_replay(
                cells, script_path, random_state, world, channel, timeout, dialect, skip_shell
            )
            own.executions.replay += 1
    if own.diagnosis is not None:
        name_ddp_writer(own.diagnosis, took.get("constructions", []))
    mine = RankResult(
        world.rank,
        own.status,
        error=dict(own.error.to_json()) if own.error else None,
        diagnosis=dict(own.diagnosis.to_json()) if own.diagnosis else None,
        replay=replay,
    )
    channel.publish("final", mine.to_json())
    # the others may still replay: wait as long as a replay may take (its time limit), and more;
    # not for a rank missing at the first meeting (blocked on a failed rank, it waits for us to exit)
    wait_s = limit + timeout
    if watcher is not None:
        watcher.stage("ranks", wait_s, own)
    missing = {int(r): why for r, why in decision["missing"].items()}
    finals = channel.gather("final", wait_s, skip=set(missing))
    ranks = [
        RankResult(r, "missing", reason=missing[r]) if r in missing else RankResult.from_answer(r, finals[r])
        for r in range(world.world_size)
    ]
    _mark_same(ranks)
    proposal = min(ranks, key=lambda r: (_SEVERITY[r.status], r.rank)).rank
    reporter = int(channel.decide("reporter", {"rank": proposal})["rank"])
    check = DistributedCheck(world, channel, own, ranks, reporter, timeout, wait_s)
    if own.diagnosis is not None and missing and replay and "alone" in replay:
        check.notes.append(
            f"Rank {world.rank} replayed alone: {'; '.join(missing.values())}. {_ALONE.capitalize()}: "
            "values (averaged gradients, broadcast weights) differ from the launch, which op wrote and "
            "which op saved do not."
        )
    elif own.diagnosis is not None and not own.diagnosis.reproduced and len(ranks) > 1:
        check.notes.append(
            "A distributed replay needs every rank to run the same collectives in the same order; one "
            f"that a rank does not join fails after {timeout:g} s (see each rank's replay below)."
        )
    failed = [r for r in ranks if r.status == "inplace_error" and r.rank != reporter]
    differ = [str(r.rank) for r in failed if r.same_as is None]
    if differ and check.is_reporter:
        which = ("Ranks " if len(differ) > 1 else "Rank ") + ", ".join(differ)
        check.notes.append(
            f"{which} failed differently (its writer, saver or tensor is another; see above): ranks "
            "diverge when each writes other parameters (ZeroRedundancyOptimizer steps only the ones a rank "
            "owns, and receives the others by a broadcast that does not bump versions) or sees other data."
        )
    if check.is_reporter and with_fixes and own.diagnosis is not None and own.replay_finished:
        if watcher is not None:  # candidates come without the sandbox; each launch has its deadline
            watcher.stage("fixes", MAX_LAUNCH_CHECKS * (limit + _LAUNCH_GRACE_S) + limit, own)
        own.executions.fixes_ran = "under the launch (every rank, on this machine)"
        own.diagnosis.fixes = fixes_under_launch(
            cells,
            own.diagnosis,
            script_path,
            world,
            first_s,
            time_limit_s=time_limit_s,
            dialect=dialect,
            skip_shell=skip_shell,
            on_launch=own.executions.count_fix_run,
        )
    return check


_ALONE = (
    "a one-rank gloo group stood in for the launch and get_rank()/get_world_size() answered as in "
    "the launch, so its collectives did not communicate"
)


def _drop_namespace(exception: BaseException) -> None:
    """Free what the run left: its traceback's frames hold the cells' namespace (their globals),
    and with it what holds the process group (and so the peers blocked on it).

    The traceback stays printable (its lines come from linecache)."""
    tb = exception.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<cell "):
            tb.tb_frame.f_globals.clear()
        tb = tb.tb_next
    traceback.clear_frames(exception.__traceback__)


def _meet(channel: RankChannel, status: str, first_s: float, time_limit_s: float | None) -> dict[str, Any]:
    """Release what this rank can of its group, say how its run ended, hear the others, and agree
    with them on the replay: wanted when a rank failed in place; every rank in lockstep when every
    rank answered, else the failing ranks alone."""
    release_groups()
    channel.publish("first", {"status": status})
    answers = channel.gather("first", rank_timeout(first_s, time_limit_s))
    missing = {str(r): a.reason for r, a in answers.items() if isinstance(a, Missing)}
    failing = any(isinstance(a, dict) and a.get("status") == "inplace_error" for a in answers.values())
    return channel.decide("replay", {"replay": failing, "missing": missing})


def _serve_replay(
    cells: list[Cell],
    script_path: str | None,
    random_state: RandomState,
    world: World,
    channel: RankChannel,
    timeout_s: float,
    dialect: Dialect,
    skip_shell: bool,
) -> str:
    """Re-run this rank's cells plainly, so the failing ranks' replay has all its collectives."""
    program = compile_cells(cells, SourceMap(), prefix="replay cell", dialect=dialect, skip_shell=skip_shell)
    namespace = fresh_namespace(script_path)
    random_state.restore()
    served = "re-ran its cells for the other ranks' replay"
    try:
        with as_script(script_path), replay_groups(world, channel, REPLAY, timeout_s), time_limit(timeout_s):
            result = run_program(program, namespace)
    except TimeLimitExceeded:
        return f"{served}; stopped at its time limit of {timeout_s:g} s"
    finally:
        namespace.clear()
    if result.exception is None:
        return served
    error = f"{type(result.exception).__name__}: {_first_line(result.exception, 200)}"
    return f"{served}; stopped at cell {result.cell}: {error}"


def _first_line(exc: BaseException, width: int) -> str:
    try:
        text = str(exc)
    except Exception:  # the user's __str__ raised: Python prints a placeholder too
        return "<exception str() failed>"
    return text.splitlines()[0][:width] if text else ""


def _diagnosis_key(diagnosis: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if diagnosis is None:
        return None

    def site(key: str) -> tuple[Any, ...] | None:
        value = diagnosis.get(key)
        if not isinstance(value, dict):
            return None
        return (value.get("cell"), value.get("file"), value.get("line"), value.get("op"))

    tensor = diagnosis.get("tensor") or {}
    return (diagnosis.get("kind"), site("inplace"), site("saved_by"), tuple(tensor.get("shape") or ()))


def _mark_same(ranks: list[RankResult]) -> None:
    seen: dict[tuple[Any, ...], int] = {}
    for result in ranks:
        key = _diagnosis_key(result.diagnosis)
        if key is None:
            continue
        if key in seen:
            result.same_as = seen[key]
        else:
            seen[key] = result.rank


# -- naming DDP's own machinery


def _at(location: Location, construction: Construction) -> bool:
    frame = construction.frame
    if frame.lineno != location.line:
        return False
    if location.cell is not None:
        return frame.filename == cell_filename(location.cell, "replay cell")
    return location.file is not None and os.path.abspath(location.file) == os.path.abspath(frame.filename)


def name_ddp_writer(diagnosis: Diagnosis, constructions: list[Construction]) -> None:
    """When the writer is the parameter broadcast of a ``DistributedDataParallel(...)`` line, say so.

    The recorder sees an ``aten.copy_`` at that line; the watch says DDP was constructed there
    (with its broadcast on). Decided from the replay's records, not from the code's text.
    """
    site = diagnosis.inplace
    if site is None or site.location is None or site.optimizer or "copy_" not in site.op:
        return
    if not any(c.init_sync and _at(site.location, c) for c in constructions):
        return
    diagnosis.inplace = dataclasses.replace(
        site,
        role="DistributedDataParallel's construction broadcast rank 0's parameters and buffers into this "
        "rank's, in place",
    )
    tensor = diagnosis.tensor
    what = f"`{tensor.parameter}`" if tensor is not None and tensor.parameter else "this tensor"
    diagnosis.notes.insert(
        0,
        "The writer is DDP's own machinery: constructing DistributedDataParallel copies rank 0's "
        f"parameters into every rank's (rank 0 included), and {what} had already been saved by a forward "
        "through the unwrapped module. Wrap the module in DDP before that forward (lazy modules: "
        "materialise them with a forward under torch.no_grad() first), and run the forward through the "
        "DDP wrapper.",
    )


# -- fixes, verified under the same launch


def fixes_under_launch(
    cells: list[Cell],
    diagnosis: Diagnosis,
    script_path: str | None,
    world: World,
    first_s: float,
    *,
    time_limit_s: float | None = None,
    dialect: Dialect = "python",
    skip_shell: bool = False,
    on_launch: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """The fix stage's candidates, each verified by re-running every rank of the fixed code here.

    The sandbox verifies a fix in one process, where a distributed script cannot run as launched
    (its ranks need their peers); so candidates are generated without it, and the first few, in
    rank order, are re-run as ``world_size`` ranks on this machine until one runs to the end on
    every rank. Gradients are not compared with a reference here. ``on_launch`` hears each launch
    (each runs the user's code once more on every rank).
    """
    fixes = find_fixes(cells, diagnosis, script_path, verify=False)
    checked = 0
    for fix in fixes:
        notes = [n for n in fix.get("notes", []) if not n.startswith("Not verified: verification was")]
        fix["verified"], fix["preserves_gradients"] = False, None
        if not world.all_local:
            notes.append(
                "Not verified: the ranks run on several machines, and a distributed fix is verified by "
                "re-running every rank on this one."
            )
        elif checked >= MAX_LAUNCH_CHECKS or any(f.get("verified") for f in fixes):
            notes.append("Not verified: not re-run under the launch (another fix was, first).")
        else:
            checked += 1
            if on_launch is not None:
                on_launch()
            fix["verified"], note = _run_under_launch(
                _fixed(cells, fix),
                script_path,
                world,
                first_s,
                time_limit_s=time_limit_s,
                dialect=dialect,
                skip_shell=skip_shell,
            )
            notes.append(note)
        fix["notes"] = notes
    return sorted(fixes, key=lambda f: not f.get("verified"))


def _fixed(cells: list[Cell], fix: dict[str, Any]) -> list[Cell]:
    changed = {str(k): str(v) for k, v in (fix.get("cells") or {}).items()}
    return [dataclasses.replace(c, source=changed.get(str(c.index), c.source)) for c in cells]


def _run_under_launch(
    cells: list[Cell],
    script_path: str | None,
    world: World,
    first_s: float,
    *,
    time_limit_s: float | None = None,
    dialect: Dialect = "python",
    skip_shell: bool = False,
) -> tuple[bool, str]:
    n = world.world_size
    limit = limit_for(first_s, time_limit_s)
    with tempfile.TemporaryDirectory(prefix="inplace_magic_fix_") as folder:
        job = os.path.join(folder, "cells.json")
        with open(job, "w", encoding="utf-8") as handle:
            rows = [[c.index, c.source, c.kind, c.cell_id] for c in cells]
            spec = {"cells": rows, "script_path": script_path, "dialect": dialect, "skip_shell": skip_shell}
            json.dump({**spec, "time_limit_s": limit}, handle)
        launch = LocalLaunch(n, python_path=_PACKAGE_ROOT)
        program = [sys.executable, "-m", "inplace_magic.replay.run_cells", job]
        launch.start(
            lambda r: [*program, os.path.join(folder, f"{r}.json")],
            stdout=lambda r: subprocess.DEVNULL,
            stderr=lambda r: subprocess.DEVNULL,
        )
        codes = launch.wait(deadline_s=limit + _LAUNCH_GRACE_S)
        results = [_read_json(os.path.join(folder, f"{r}.json")) for r in range(n)]
    if all(code == 0 for code in codes):
        return True, f"Verified under the same launch: {n} gloo ranks on this machine ran the fixed code."
    # the first rank to fail is the cause; the others often fail because it left their collective
    failed = [r for r in range(n) if codes[r] != 0]
    rank = min(failed, key=lambda r: (results[r] or {}).get("at", float("inf")))
    error = (results[rank] or {}).get("error")
    if error and error["type"] == "TimeLimitExceeded":
        what = f"did not finish within the {limit:g} s time limit"
    elif error:
        what = f"raised {error['type']}: {error['message']} (cell {error['cell']})"
    else:
        what = f"exited with code {codes[rank]}"
    return False, f"Not verified: re-run as {n} ranks on this machine, the fixed code's rank {rank} {what}."


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):  # the rank died before writing it: its exit code says how
        return None
    return value if isinstance(value, dict) else None
