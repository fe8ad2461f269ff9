"""``--audit``: run the code, and when nothing raised, run it once more under the audit recorder and
report every silent write into memory autograd saved (:mod:`..diagnose.silent`); when the code
used ``torch.compile``, also compare its gradients with an eager run (:mod:`.compiled_grads`).

An in-place error raised by the code is diagnosed as without ``--audit`` (:func:`.core.check_cells`):
the audit runs only on code that finished. Each hazard's fixes are the fix stage's candidates, each
verified by auditing the fixed cells again in the sandbox process (fix/sandbox/), as the check's
fixes are: a fixed run that finishes with no silent write is *verified*, and its gradients are
compared with the sandbox's reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..diagnose.locations import Locator
from ..diagnose.silent import SILENT, Hazard, hidden_by_compile, silent_hazards
from ..record.recorder import ReplayStopped
from ..record.saved_contents import AuditRecorder, ContentsLog
from ..replay.cells import Cell
from ..replay.eager import eager_replay
from ..replay.run import (
    Dialect,
    RandomState,
    SourceMap,
    as_script,
    compile_cells,
    dialect_of,
    fresh_namespace,
    raising_frame,
    run_program,
)
from ..replay.time_limit import TimeLimitExceeded, interrupt_once, limit_for, time_limit
from .compiled_grads import CompiledComparison, GradientTap, compare_compiled, dynamo_frames
from .core import CheckResult, Watcher, check_cells

MAX_FIXED_HAZARDS = 2  # hazards whose fixes are searched
MAX_CANDIDATES = 4  # candidates audited per hazard


@dataclass
class AuditRun:
    """What one audited run of the cells saw."""

    hazards: list[Hazard]
    contents: ContentsLog
    error: BaseException | None  # the user's code raised it (never the recorder's own stop)
    grads: dict[str, torch.Tensor | None] | None
    compiled_code: list[Any]
    trace: Any
    source_map: SourceMap
    hidden: Hazard | None = None  # eager stopped at a version error the compiled run did not raise


@dataclass
class AuditResult:
    check: CheckResult  # the plain run (and its diagnosis, when it raised)
    run: AuditRun | None = None
    compiled: CompiledComparison | None = None
    notes: list[str] = field(default_factory=list)
    audit_runs: int = 0  # runs of the code for the audit itself (the audited run, the compiled rerun)

    @property
    def hazards(self) -> list[Hazard]:
        return self.run.hazards if self.run is not None else []

    @property
    def found(self) -> bool:
        return bool(self.hazards) or bool(self.compiled is not None and self.compiled.differ)

    @property
    def status(self) -> str:
        if self.check.status != "ok":
            return self.check.status
        return "silent_hazard" if self.found else "ok"

    def limits(self) -> list[str]:
        out: list[str] = []
        log = self.run.contents if self.run is not None else None
        if log is not None and log.unchecked:
            out.append(
                f"The contents of {log.unchecked} saved tensors ({log.unchecked_bytes / 2**20:.1f} MiB) were "
                f"not kept (past the {log.cap_bytes / 2**20:g} MiB cap on live copies, "
                "INPLACE_MAGIC_AUDIT_MIB, or not a plain strided tensor): for them only the dispatched "
                "writes were checked."
            )
        return out

    def to_json(self) -> dict[str, Any]:
        out = self.check.to_json()
        out["status"] = self.status
        hazards = []
        for hazard in self.hazards:
            item: dict[str, Any] = dict(hazard.diagnosis.to_json())
            item["status"] = "silent_hazard"
            item["silent"] = SILENT
            item["cause"] = hazard.cause
            item["saves"] = hazard.saves
            hazards.append(item)
        out["audit"] = {
            "ran": self.run is not None,
            "hazards": hazards,
            "compiled": self.compiled.to_json() if self.compiled is not None else None,
            "checked_saves": len(self.run.contents.unpacked) if self.run is not None else 0,
            "unchecked_saves": self.run.contents.unchecked if self.run is not None else 0,
            "cap_mib": (self.run.contents.cap_bytes / 2**20) if self.run is not None else None,
            "limits": self.limits(),
            "notes": list(self.notes),
            "runs": self.audit_runs,
        }
        executions = out["executions"]
        executions["audit"] = self.audit_runs
        executions["total"] += self.audit_runs
        return out


def _audited_run(
    cells: list[Cell],
    script_path: str | None,
    random_state: RandomState,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
    compiled: bool,
) -> AuditRun:
    """One run of the cells under the audit recorder. ``compiled``: the plain run compiled code and
    finished, so a version error the recorder stops at here is one the compiled graph hid."""
    source_map = SourceMap()
    program = compile_cells(cells, source_map, prefix="audit cell", dialect=dialect, skip_shell=skip_shell)
    namespace = fresh_namespace(script_path)
    random_state.restore()
    tap = GradientTap(namespace)
    recorder = AuditRecorder()
    # eager, for certain (replay/eager.py: the plain run ran first, here): without it dynamo may trace
    # into the recorder's hooks; the audit of compiled code is the eager run's records plus the
    # gradient comparison (compiled_grads)
    with as_script(script_path), time_limit(limit), tap, eager_replay(), recorder:
        error = run_program(program, namespace, interruptible=True).exception
    hazards = silent_hazards(recorder.trace, recorder.contents, source_map, namespace)
    hidden = None
    if compiled and isinstance(error, ReplayStopped):
        where = Locator(source_map).location(raising_frame(error, source_map))
        hidden = hidden_by_compile(recorder.trace, source_map, namespace, where)
        if hidden is not None:  # the recorder's own stop, where eager PyTorch raises: a finding
            hazards.append(hidden)
            error = None
    return AuditRun(
        hazards, recorder.contents, error, tap.first, tap.compiled_code, recorder.trace, source_map, hidden
    )


def audit_cells(
    cells: list[Cell],
    script_path: str | None = None,
    *,
    with_fixes: bool = True,
    time_limit_s: float | None = None,
    dialect: Dialect | None = None,
    skip_shell: bool = False,
    watcher: Watcher | None = None,
) -> AuditResult:
    """:func:`.core.check_cells`, then, when the code finished, the audit (see the module docstring)."""
    dialect = dialect or dialect_of(cells, script_path)
    random_state = RandomState.capture()
    frames_before = dynamo_frames()
    started = time.monotonic()
    check = check_cells(
        cells,
        script_path,
        with_fixes=with_fixes,
        time_limit_s=time_limit_s,
        dialect=dialect,
        skip_shell=skip_shell,
        watcher=watcher,
    )
    first_s = time.monotonic() - started
    result = AuditResult(check)
    if check.status != "ok":
        result.notes.append("The audit runs only on code that finishes: this code raised, as reported.")
        return result
    compiled_used = dynamo_frames() > frames_before
    limit = limit_for(first_s, time_limit_s)
    if watcher is not None:
        watcher.stage("replay", limit, check)
    with interrupt_once():
        try:
            result.audit_runs += 1
            run = _audited_run(cells, script_path, random_state, limit, dialect, skip_shell, compiled_used)
        except TimeLimitExceeded:
            result.notes.append(f"The audit run went past its time limit of {limit:g} s and was stopped.")
            return result
        except KeyboardInterrupt:
            check.interrupted = True
            result.notes.append("The audit run was interrupted (Ctrl-C): nothing was audited.")
            return result
        result.run = run
        if run.error is not None:
            result.notes.append(
                f"The audited run raised {type(run.error).__name__} where the plain run did not; "
                "what it recorded up to there is reported."
            )
        if compiled_used:
            if watcher is not None:  # each run gets its stage: the watching process times them
                watcher.stage("replay", limit, check)
            result.compiled = compare_compiled(
                cells, script_path, random_state, limit, dialect, skip_shell, run.grads, run, run.hidden
            )
            result.audit_runs += result.compiled.runs
        if with_fixes and run.hazards:
            if watcher is not None:
                watcher.stage("fixes", limit * MAX_CANDIDATES * MAX_FIXED_HAZARDS, check)
            _search_fixes(result, cells, script_path, limit, dialect, skip_shell)
    return result


def _search_fixes(
    result: AuditResult,
    cells: list[Cell],
    script_path: str | None,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
) -> None:
    """The fix stage's candidates for each hazard, each audited in the sandbox (fix/sandbox/): a fix
    is verified when the fixed cells run to their end there and their audit finds no silent write,
    and gradient-preserving when their first backward's gradients equal the sandbox's reference
    (the original cells under ``allow_mutation_on_saved_tensors``, which copies a saved tensor
    before any dispatched in-place write reaches it: the gradients of the forward that ran)."""
    from ..fix import generate, rank, search_deadline_s  # the fix stage imports libcst: only when asked
    from ..fix.context import Context
    from ..fix.sandbox.verify import Session, apply

    session = Session(
        cells,
        script_path,
        time.monotonic() + search_deadline_s(limit) * MAX_FIXED_HAZARDS,
        limit,
        dialect=dialect,
        skip_shell=skip_shell,
    )
    try:
        for h, hazard in enumerate(result.hazards[:MAX_FIXED_HAZARDS]):
            diagnosis = hazard.diagnosis
            candidates = generate.candidates(Context.build(cells, dict(diagnosis.to_json())))
            judged = [
                (candidate, _audited_verdict(session, f"audit{h}.{i}", cells, candidate, apply))
                for i, candidate in enumerate(candidates[:MAX_CANDIDATES])
            ]
            diagnosis.fixes = [dict(rank.to_fix(cells, c, v)) for c, v in rank.ranked(judged)]
    finally:
        session.close()
        result.check.executions.fix_verification += session.executions


def _audited_verdict(session: Any, job: str, cells: list[Cell], candidate: Any, apply: Any) -> Any:
    from ..fix.model import Verdict

    notes = list(candidate.notes)
    if candidate.fallback:
        # its own saved-tensor hooks take the saves over: the audit would see none, and prove nothing
        notes.append("Not verified: its saved-tensor hooks take over every save, which the audit cannot see.")
        return Verdict(notes=notes)
    run = session.run(job, apply(cells, candidate.cells), compare=True, audit=True)
    if not run.ran or run.timed_out:
        why = f"the sandbox process ended ({run.ended})" if run.ended else "its audit did not finish in time"
        return Verdict(notes=[*notes, f"Not verified: {why}."])
    if run.error is not None:
        why = f"Not verified: the fixed code raised {run.error.get('type')}: {run.error.get('message')}"
        return Verdict(notes=[*notes, why[:300]], error=run.error)
    if run.hazards:
        return Verdict(
            notes=[*notes, "Did not help: the audit of the fixed code still finds a silent write."]
        )
    notes.append(
        "Verified in the sandbox: the fixed code ran to its end and its audit found no silent write."
    )
    preserves: bool | None = None
    if candidate.changes_semantics:
        notes.append("Changes what is computed, so the gradients are not compared with the original's.")
        preserves = False
    elif run.matches_reference is not None:
        preserves = run.matches_reference
        notes.append(
            f"Gradients match the reference ({run.compared} compared: the original code under "
            "allow_mutation_on_saved_tensors, same random state)."
            if preserves
            else "Gradients differ from the reference: " + ", ".join(run.mismatched[:5]) + "."
        )
    return Verdict(verified=True, preserves_gradients=preserves, notes=notes)
