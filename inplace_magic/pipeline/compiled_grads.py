"""``--audit`` on code that uses ``torch.compile``: the first backward's gradients, compiled and eager.

Under the audit recorder compiled code runs eagerly (dispatch modes and saved-tensor hooks make
dynamo fall back), so the audited run is the eager reference; one more plain run gives the compiled
gradients. When they differ, the in-place write recorded inside a compiled function is named: a
graph that loses a saved view's version counter (pytorch issues #197887, #188084, #195422) computes
its gradient from the overwritten value, where eager raises or uses the right one.

Random ops draw different numbers compiled (Inductor's Philox) and eager: a region with any is not
compared, and the result says why.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import torch

from ..diagnose.diagnosis import OpSite
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
    writer: OpSite | None = None  # the in-place write inside a compiled function that explains it
    notes: list[str] = field(default_factory=list)

    @property
    def differ(self) -> bool:
        return bool(self.mismatched)

    def to_json(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "mismatched": list(self.mismatched),
            "differ": self.differ,
            "inplace": self.writer.to_json() if self.writer is not None else None,
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


def compare_compiled(
    cells: list[Cell],
    script_path: str | None,
    random_state: RandomState,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
    eager: grads.Snapshot | None,
    audited: Any,
) -> CompiledComparison:
    """Run the cells plainly (compiled) and compare their first backward with the audited (eager) run."""
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
    source_map = SourceMap()
    program = compile_cells(cells, source_map, prefix="compiled cell", dialect=dialect, skip_shell=skip_shell)
    namespace = fresh_namespace(script_path)
    random_state.restore()
    tap = GradientTap(namespace)
    with as_script(script_path), time_limit(limit), tap:
        error = run_program(program, namespace, interruptible=True).exception
    if error is not None or eager is None or tap.first is None:
        why = f"it raised {type(error).__name__}" if error is not None else "no backward ran"
        return CompiledComparison(0, [], notes=[f"Not compared: {why}."])
    compared, mismatched = grads.compare([("first backward", eager, tap.first)])
    result = CompiledComparison(compared, mismatched)
    if mismatched:
        writes = [op for op in regions if op.writes and op.optimizer is None]
        builder = SiteBuilder(trace, audited.source_map, None)
        if writes:
            result.writer = builder.op_site(writes[0])
        else:
            result.notes.append("No in-place write was recorded inside the compiled function.")
    return result
