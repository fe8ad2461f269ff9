"""``--audit`` on code that uses ``torch.compile``: the first backward's gradients, compiled and eager.

Under the audit recorder compiled code runs eagerly (dispatch modes and saved-tensor hooks make
dynamo fall back), so the audited run is the eager reference; one more plain run gives the compiled
gradients. When they differ, the in-place op behind it is named:

* a write inside a compiled function that the compiled graph handles otherwise than eager (it drops
  a write into an input made through an alias, pytorch issue #195422): the write recorded inside a
  function handed to ``torch.compile``;
* a write between forward and backward into memory the compiled graph saved as a view of its input
  (pytorch issue #197887): eager raises the in-place error there (the audited run stops at it,
  :func:`..diagnose.silent.hidden_by_compile`), the compiled graph silently used the new values. The
  eager reference is then the cells run eagerly under ``allow_mutation_on_saved_tensors`` (the
  gradient of the forward that ran, as the fix stage's reference), and the writer is the diagnosed one.

Random ops draw different numbers compiled (Inductor's Philox) and eager: a region with any is not
compared, and the result says why.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field
from typing import Any

import torch

from ..diagnose.diagnosis import OpSite
from ..diagnose.silent import Hazard
from ..diagnose.sites import SiteBuilder
from ..fix.sandbox import grads
from ..record.records import OpRecord
from ..replay.cells import Cell
from ..replay.run import (
    Dialect,
    RandomState,
    SourceMap,
    as_script,
    compile_cells,
    fresh_namespace,
    run_program,
)
from ..replay.time_limit import time_limit

_RANDOM_OPS = ("dropout", "bernoulli", "rand", "normal", "uniform_", "multinomial", "exponential_")


def dynamo_frames() -> int:
    """How many frames dynamo has compiled in this process so far (0 when dynamo is not loaded)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(sum(counters["frames"].values()))


def _code_of(target: Any) -> types.CodeType | None:
    if isinstance(target, torch.nn.Module):
        target = type(target).forward
    code = getattr(target, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


class GradientTap:
    """For one run: the ``.grad`` of the namespace's leaves after its first backward, and the code
    of every function or module handed to ``torch.compile``."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.first: grads.Snapshot | None = None
        self.compiled_code: list[types.CodeType] = []
        self._backward = torch.autograd.backward
        self._compile = torch.compile

    def __enter__(self) -> GradientTap:
        backward, compile_ = self._backward, self._compile

        def tapped_backward(*args: Any, **kwargs: Any) -> Any:
            out = backward(*args, **kwargs)
            if self.first is None:
                self.first = grads.snapshot(self.namespace)
            return out

        def tapped_compile(model: Any = None, **kwargs: Any) -> Any:
            if model is None:  # @torch.compile(backend=...)
                return lambda fn: tapped_compile(fn, **kwargs)
            code = _code_of(model)
            if code is not None:
                self.compiled_code.append(code)
            return compile_(model, **kwargs)

        # Tensor.backward and user code look both up on their modules at each call
        torch.autograd.backward = tapped_backward
        torch.compile = tapped_compile  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        torch.autograd.backward = self._backward
        torch.compile = self._compile


@dataclass
class CompiledComparison:
    compared: int
    mismatched: list[str]
    writer: OpSite | None = None  # the in-place op that explains it
    notes: list[str] = field(default_factory=list)
    reference: str = "the audited eager run"  # what the compiled gradients were compared with
    hidden_error: bool = False  # eager raises the in-place error, the compiled graph did not
    runs: int = 0  # runs of the user's code this comparison started

    @property
    def differ(self) -> bool:
        return bool(self.mismatched)

    def to_json(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "mismatched": list(self.mismatched),
            "differ": self.differ,
            "inplace": self.writer.to_json() if self.writer is not None else None,
            "reference": self.reference,
            "hidden_error": self.hidden_error,
            "notes": list(self.notes),
        }


def _inside(op: OpRecord, code: list[types.CodeType]) -> bool:
    spans = []
    for c in code:
        lines = [line for _, _, line in c.co_lines() if line is not None]
        spans.append((c.co_filename, c.co_firstlineno, max(lines, default=c.co_firstlineno)))
    return any(
        frame.filename == name and first <= frame.lineno <= last
        for frame in op.frames
        for name, first, last in spans
    )


def _run_cells(
    cells: list[Cell],
    script_path: str | None,
    random_state: RandomState,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
    prefix: str,
    eager_reference: bool,
) -> tuple[BaseException | None, grads.Snapshot | None]:
    """One run of the cells in a fresh namespace: its error and its first backward's gradients.
    ``eager_reference``: eagerly, with saved tensors cloned before an in-place write reaches them."""
    source_map = SourceMap()
    program = compile_cells(cells, source_map, prefix=prefix, dialect=dialect, skip_shell=skip_shell)
    namespace = fresh_namespace(script_path)
    random_state.restore()
    tap = GradientTap(namespace)
    with contextlib.ExitStack() as stack:
        stack.enter_context(as_script(script_path))
        stack.enter_context(time_limit(limit))
        stack.enter_context(tap)
        if eager_reference:
            stack.enter_context(torch.compiler.set_stance("force_eager"))
            stack.enter_context(torch.autograd.graph.allow_mutation_on_saved_tensors())
        error = run_program(program, namespace, interruptible=True).exception
    return error, tap.first


def compare_compiled(
    cells: list[Cell],
    script_path: str | None,
    random_state: RandomState,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
    eager: grads.Snapshot | None,
    audited: Any,
    hidden: Hazard | None = None,
) -> CompiledComparison:
    """Run the cells plainly (compiled) and compare their first backward with eager's: the audited
    run's, or, when ``hidden`` (eager stopped at an in-place error), an eager reference run's."""
    trace = audited.trace
    regions = [op for op in trace.ops if not op.backward and _inside(op, audited.compiled_code)]
    random = sorted({op.op for op in regions if any(r in op.op for r in _RANDOM_OPS)})
    if random:
        return CompiledComparison(
            0,
            [],
            notes=[
                f"Not compared: the compiled region draws random numbers ({', '.join(random)}), which "
                "compiled code draws differently from eager."
            ],
        )
    runs = 0
    reference = "the audited eager run"
    if hidden is not None:
        runs += 1
        reference = "an eager run under allow_mutation_on_saved_tensors (eager PyTorch raises there)"
        ref_error, eager = _run_cells(
            cells, script_path, random_state, limit, dialect, skip_shell, "eager reference cell", True
        )
        if ref_error is not None:
            eager = None
    runs += 1
    error, compiled = _run_cells(
        cells, script_path, random_state, limit, dialect, skip_shell, "compiled cell", False
    )
    if error is not None or eager is None or compiled is None:
        why = f"it raised {type(error).__name__}" if error is not None else "no backward ran"
        return CompiledComparison(0, [], notes=[f"Not compared: {why}."], reference=reference, runs=runs)
    compared, mismatched = grads.compare([("first backward", eager, compiled)])
    result = CompiledComparison(
        compared, mismatched, reference=reference, hidden_error=hidden is not None, runs=runs
    )
    if not mismatched:
        return result
    if hidden is not None:
        result.writer = hidden.diagnosis.inplace
        if result.writer is None:
            result.notes.append("The write into the saved tensor was not recorded (see the hazard).")
        return result
    writes = [op for op in regions if op.writes and op.optimizer is None]
    if writes:
        result.writer = SiteBuilder(trace, audited.source_map, None).op_site(writes[0])
    else:
        result.notes.append("No in-place write was recorded inside the compiled function.")
    return result
