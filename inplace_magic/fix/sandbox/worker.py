"""The verifier's sandbox: a separate Python process that runs the original cells and candidate fixes.

Usage (by :mod:`.verify` only): ``python -m inplace_magic.fix.sandbox.worker``, then JSON lines on stdin:
first ``{"cells", "script_path", "time_limit", "dialect", "skip_shell"}``, then one
``{"id", "cells", "compare"}`` per candidate (or ``{"id", "cells", "diagnose": true}`` for the
engine's diagnosis of the error they raise; ``"audit": true`` runs the candidate under the audit's
recorder, eagerly, and the answer's ``hazards`` counts the silent writes it found). Each run
starts from the same RNG state and a fresh namespace, as ``python PATH`` would (``sys.argv ==
[PATH]``), within the time limit; one JSON line answers each job, and a line ``{"executions": n}``
goes out before each run of the user's code starts, so the parent's count is exact even if it kills
us. A failure of ours is answered ``{"internal_error": ...}``.

This re-executes the user's code. It runs in its own process so the user's kernel or interpreter is
untouched; the user's own prints go to stderr, and stdin reads as empty. Runs in this process share
imported modules (the user's sibling modules included) and are separated by resetting torch's
global modes, the namespace and the random state.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

from ...record.family import classify
from ...replay.cells import Cell
from ...replay.run import (
    Dialect,
    RandomState,
    SourceMap,
    as_script,
    compile_cells,
    fresh_namespace,
    raising_frame,
    run_program,
)
from ...replay.time_limit import TimeLimitExceeded, time_limit
from . import grads

MAX_SNAPSHOTS = 4


@dataclass
class Run:
    error: BaseException | None = None
    error_cell: int | None = None
    source_map: SourceMap = field(default_factory=SourceMap)
    snapshots: list[grads.Snapshot] = field(default_factory=list)
    final: grads.Snapshot = field(default_factory=dict)
    backward_calls: int = 0
    grad_calls: int = 0
    hazards: int | None = None  # silent writes found, when the run was audited


class _Recorder:
    """Counts backward/grad calls and snapshots ``.grad`` after the first few backward calls."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.namespace: dict[str, Any] = {}
        backward, grad = torch.autograd.backward, torch.autograd.grad

        def recording_backward(*args: Any, **kwargs: Any) -> Any:
            result = backward(*args, **kwargs)
            if self.run is not None:
                self.run.backward_calls += 1
                if len(self.run.snapshots) < MAX_SNAPSHOTS:
                    self.run.snapshots.append(grads.snapshot(self.namespace))
            return result

        def recording_grad(*args: Any, **kwargs: Any) -> Any:
            result = grad(*args, **kwargs)
            if self.run is not None:
                self.run.grad_calls += 1
            return result

        # Tensor.backward looks ``torch.autograd.backward`` up at call time, so both paths are seen.
        torch.autograd.backward = recording_backward
        torch.autograd.grad = recording_grad


@contextlib.contextmanager
def _torch_modes() -> Iterator[None]:
    """Undo global torch modes a program may switch (grad mode, default dtype, anomaly mode)."""
    grad_enabled, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    anomaly = torch.is_anomaly_enabled()
    try:
        yield
    finally:
        torch.set_grad_enabled(grad_enabled)
        torch.set_default_dtype(dtype)
        torch.autograd.set_detect_anomaly(anomaly)


class Sandbox:
    def __init__(
        self,
        script_path: str | None,
        time_limit: float,
        dialect: Dialect = "python",
        skip_shell: bool = False,
        started: Callable[[int], None] | None = None,
    ) -> None:
        self.script_path = script_path
        self.time_limit = time_limit
        self.dialect: Dialect = dialect
        self.skip_shell = skip_shell
        self.random = RandomState.capture()
        self.recorder = _Recorder()
        self.runs = 0  # runs of the user's code started in this process
        self._started = started or (lambda runs: None)

    def _start(self) -> None:
        self.runs += 1
        self._started(self.runs)

    def run(self, cells: list[Cell], allow_mutation: bool = False, audit: bool = False) -> Run:
        self._start()
        result = Run()
        namespace = fresh_namespace(self.script_path)
        self.recorder.run, self.recorder.namespace = result, namespace
        mutation: contextlib.AbstractContextManager[Any] = (
            torch.autograd.graph.allow_mutation_on_saved_tensors()
            if allow_mutation
            else contextlib.nullcontext()
        )
        audited = None
        if audit:
            from ...record.saved_contents import AuditRecorder

            audited = AuditRecorder()
            mutation = _eagerly_under(audited)
        self.random.restore()
        program = compile_cells(
            cells,
            result.source_map,
            prefix=f"cell#{self.runs}",
            dialect=self.dialect,
            skip_shell=self.skip_shell,
        )
        try:
            with _torch_modes(), as_script(self.script_path), time_limit(self.time_limit), mutation:
                outcome = run_program(program, namespace)
            result.error, result.error_cell = outcome.exception, outcome.cell
        except TimeLimitExceeded as exc:
            result.error = exc
        finally:
            self.recorder.run = None
        result.final = grads.snapshot(namespace)
        if audited is not None:
            result.hazards = _hazards(audited, result, namespace)
        return result

    def diagnose(self, cells: list[Cell]) -> tuple[dict[str, Any] | None, list[str]]:
        """The engine's diagnosis of the error these cells raise (to fix the next error in a chain),
        and the internal errors of ours it met."""
        from ...pipeline.core import check_cells

        self.random.restore()
        self._start()  # the run as given; the replay is counted once it is known to have happened
        try:
            with _torch_modes(), time_limit(self.time_limit):
                result = check_cells(
                    cells,
                    self.script_path,
                    with_fixes=False,
                    dialect=self.dialect,
                    skip_shell=self.skip_shell,
                )
        except TimeLimitExceeded:
            return None, []
        for _ in range(result.executions.replay):  # one or two (a first pass): each run is heard
            self._start()
        diagnosed = result.status == "inplace_error" and result.replay_finished
        return (result.to_json() if diagnosed else None), result.internal_errors

    def describe(self, run: Run) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backward_calls": run.backward_calls,
            "gradients": max(grads.count(run.final), max(map(grads.count, run.snapshots), default=0))
            + run.grad_calls,
            "finite": grads.all_finite(run.final),
            "error": None,
            "timed_out": isinstance(run.error, TimeLimitExceeded),
            "executions": self.runs,
        }
        if run.hazards is not None:
            out["hazards"] = run.hazards
        if run.error is not None and not isinstance(run.error, TimeLimitExceeded):
            message = _message(run.error)
            error: dict[str, Any] = {
                "type": type(run.error).__name__,
                "message": "<exception str() failed>"
                if message is None
                else message.strip().split("\n")[0][:500],
                "kind": classify(run.error) if message is not None else None,
            }
            frame = raising_frame(run.error, run.source_map)
            if frame is not None:
                where = run.source_map.cell_of(frame.filename)
                error.update({"cell": where[0]} if where else {"file": frame.filename})
                error["line"] = frame.lineno
            out["error"] = error
        return out


@contextlib.contextmanager
def _eagerly_under(recorder: Any) -> Iterator[None]:
    """The audit's run: compiled code eagerly (dynamo would trace into the recorder's hooks)."""
    with torch.compiler.set_stance("force_eager"), recorder:
        yield


def _hazards(recorder: Any, run: Run, namespace: dict[str, Any]) -> int:
    """The silent writes an audited run made; a version error the recorder stopped backward at
    counts as one (a compiled graph hid it: :func:`...diagnose.silent.hidden_by_compile`)."""
    from ...diagnose.silent import silent_hazards
    from ...record.recorder import ReplayStopped

    found = len(silent_hazards(recorder.trace, recorder.contents, run.source_map, namespace))
    if isinstance(run.error, ReplayStopped):
        run.error = None  # the recorder's own stop, not the user's error
        found += 1
    return found


def _message(exc: BaseException) -> str | None:
    try:
        return str(exc)
    except Exception:  # the user's __str__ raised: Python prints a placeholder too
        return None


def _pairs(reference: Run, candidate: Run) -> list[tuple[str, grads.Snapshot, grads.Snapshot]]:
    pairs = [
        (f"after backward #{i + 1}", r, c)
        for i, (r, c) in enumerate(zip(reference.snapshots, candidate.snapshots, strict=False))
    ]
    if reference.error is None and candidate.error is None:
        pairs.append(("at the end", reference.final, candidate.final))
    return pairs


def _cells(raw: list[list[Any]]) -> list[Cell]:
    return [
        Cell(int(i), str(source), "code" if kind == "code" else "markdown", cell_id)
        for i, source, kind, cell_id in raw
    ]


def serve(jobs: TextIO, answers: TextIO) -> None:
    setup = json.loads(jobs.readline())

    def answer(payload: dict[str, Any]) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    dialect: Dialect = "ipython" if setup.get("dialect") == "ipython" else "python"
    sandbox = Sandbox(
        setup.get("script_path"),
        float(setup.get("time_limit", 20)),
        dialect,
        bool(setup.get("skip_shell")),
        started=lambda runs: answer({"executions": runs}),
    )
    original_cells = _cells(setup["cells"])
    original = sandbox.describe(sandbox.run(original_cells))
    answer({"id": "original", **original})
    if original["timed_out"]:
        # nothing can be compared with a run that never ended: no reference, no candidate
        answer({"id": "reference", "timed_out": True, "executions": sandbox.runs})
        return
    reference = sandbox.run(original_cells, allow_mutation=True)
    answer({"id": "reference", **sandbox.describe(reference)})
    for line in jobs:
        if not line.strip():
            continue
        job = json.loads(line)
        if job.get("diagnose"):
            diagnosis, bugs = sandbox.diagnose(_cells(job["cells"]))
            payload = {"id": job["id"], "diagnosis": diagnosis, "executions": sandbox.runs}
            answer({**payload, "internal_error": "; ".join(bugs)} if bugs else payload)
            continue
        run = sandbox.run(_cells(job["cells"]), audit=bool(job.get("audit")))
        payload = {"id": job["id"], **sandbox.describe(run)}
        if job.get("compare"):
            compared, mismatched = grads.compare(_pairs(reference, run))
            payload.update(compared=compared, mismatched=mismatched[:10])
        answer(payload)


def import_lazily_imported() -> None:
    """Import, before the first run, what the worker would import only once a run needs it: once in
    the fork server for all its workers, and never inside a run's time limit.

    The gradient reference's ``allow_mutation_on_saved_tensors`` enters a dispatch mode that dynamo
    disables, which imports ``torch._dynamo`` (1.7 CPU-s, more under load: a short time limit expired
    in the import); a chained error's diagnosis imports the pipeline, an audit its recorder. What the
    imports write to the environment is taken back (``torch._dynamo``'s sets
    ``TORCHINDUCTOR_CACHE_DIR``, which torch sets again whenever it reads it): the user's code sees
    the environment the worker was started with.
    """
    environment = dict(os.environ)
    import torch._dynamo  # noqa: F401

    from ...diagnose import silent  # noqa: F401
    from ...pipeline import core  # noqa: F401
    from ...record import recorder, saved_contents  # noqa: F401

    os.environ.clear()
    os.environ.update(environment)


def _serve_reporting(jobs: TextIO, answers: TextIO) -> int:
    """Serve the jobs; a failure of ours is said to the parent, which reports it as an internal error."""
    try:
        import_lazily_imported()  # a no-op in a fork of the server, which imported them
        serve(jobs, answers)
    except Exception as bug:
        answers.write(json.dumps({"internal_error": f"{type(bug).__name__}: {_message(bug)}"}) + "\n")
        answers.flush()
        traceback.print_exc()
        return 1
    return 0


def serve_forked(jobs: int, answers: int) -> int:
    """The worker in a child of the fork server (:mod:`.fork_server`): the jobs and answers come on
    their own fds, which the user's subprocesses do not inherit; fds 0-2 are already ``/dev/null``."""
    os.set_inheritable(jobs, False)
    os.set_inheritable(answers, False)
    with (
        os.fdopen(jobs, "r", encoding="utf-8") as job_lines,
        os.fdopen(answers, "w", encoding="utf-8") as answer_lines,
    ):
        return _serve_reporting(job_lines, answer_lines)


def main() -> None:
    # Answers go to the real stdout; the user's prints (and anything written to fd 1) to stderr,
    # and the user's input() reads an empty stdin rather than our jobs.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    jobs = sys.stdin
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.exit(_serve_reporting(jobs, answers))


if __name__ == "__main__":
    main()
