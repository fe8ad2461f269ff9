"""One re-execution of a verification window in the live kernel, into an overlay of its namespace.

The cells run through :func:`~inplace_magic.replay.kernel.replay_in_kernel`, the diagnosis' own
replay: the same start (random states, generator objects, iterator positions), time limit and undo
log, so every tensor, object, random state and iterator it touches is put back afterwards. The
names it binds go into an overlay, a copy of the namespace that is dropped afterwards: a fixed class
or a new ``model`` never replaces the user's, even where the undo log's walk stops. While it runs,
backward calls are counted and the gradients of the overlay's leaves taken after the first few and
at the end, named as :mod:`~inplace_magic.fix.sandbox.grads` names them, to compare a fix with the
reference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from ...replay.celldeps import Overlay
from ...replay.kernel import FailedCell, KernelRerun, ReplayReport, replay_in_kernel
from ..sandbox import grads
from .reference import SavedValuesKept

MAX_SNAPSHOTS = 4  # gradients are compared after the first few backward calls, as in the sandbox


@dataclass
class Observed:
    """What one re-execution of a window did."""

    error: BaseException | None = None  # what the cells raised (None: they ran to the end, or let go)
    failed: bool = False  # they raised
    backward_calls: int = 0
    grad_calls: int = 0
    snapshots: list[grads.Snapshot] = field(default_factory=list)
    final: grads.Snapshot = field(default_factory=dict)
    not_rewound: list[str] = field(default_factory=list)
    # each leaf's .grad (the tensor itself, and its version) when the last snapshot was taken
    grads_then: dict[str, tuple[torch.Tensor, int] | None] | None = field(default=None, repr=False)

    @property
    def gradients(self) -> int:
        return max(grads.count(self.final), *map(grads.count, self.snapshots), 0) + self.grad_calls


def pairs(reference: Observed, candidate: Observed) -> list[tuple[str, grads.Snapshot, grads.Snapshot]]:
    """The gradients of both runs, labelled by when they were taken."""
    out = [
        (f"after backward #{i + 1}", r, c)
        for i, (r, c) in enumerate(zip(reference.snapshots, candidate.snapshots, strict=False))
    ]
    if not reference.failed and not candidate.failed:
        out.append(("at the end", reference.final, candidate.final))
    return out


class _OverlayShell:
    """The shell as a verification replay sees it: the same compiler and transformers, and the
    overlay as its namespace."""

    def __init__(self, shell: Any, namespace: dict[str, Any]) -> None:
        self._shell = shell
        self.user_ns = self.user_global_ns = namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shell, name)


@contextlib.contextmanager
def _watching_backward(observed: Observed, namespace: dict[str, Any]) -> Iterator[None]:
    """Count backward and grad calls and take the gradients after the first few; put torch back after.

    ``Tensor.backward`` looks ``torch.autograd.backward`` up when it is called, so both paths are seen.
    """
    backward, grad = torch.autograd.backward, torch.autograd.grad

    def watched_backward(*args: Any, **kwargs: Any) -> Any:
        result = backward(*args, **kwargs)
        observed.backward_calls += 1
        if len(observed.snapshots) < MAX_SNAPSHOTS:
            observed.snapshots.append(grads.snapshot(namespace))
            observed.grads_then = _grads_now(namespace)
        return result

    def watched_grad(*args: Any, **kwargs: Any) -> Any:
        result = grad(*args, **kwargs)
        observed.grad_calls += 1
        return result

    torch.autograd.backward, torch.autograd.grad = watched_backward, watched_grad  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.autograd.backward, torch.autograd.grad = backward, grad  # type: ignore[assignment]


def _grads_now(namespace: dict[str, Any]) -> dict[str, tuple[torch.Tensor, int] | None]:
    # the tensor itself, not its id: held here, it cannot be freed and its id reused by another
    leaves = grads.leaves(namespace)
    return {name: None if t.grad is None else (t.grad, t.grad._version) for name, t in leaves.items()}


def _final(observed: Observed, namespace: dict[str, Any]) -> grads.Snapshot:
    """The gradients at the end: the last snapshot itself when no .grad changed since (the usual
    cell: one backward, then the optimizer step, which reads them); copying them all again is a
    share of the verification's cost on a small model."""
    then = observed.grads_then
    if observed.snapshots and then is not None:
        now = _grads_now(namespace)
        if now.keys() == then.keys() and all(
            (a is None and b is None) or (a is not None and b is not None and a[0] is b[0] and a[1] == b[1])
            for a, b in ((now[name], then[name]) for name in now)
        ):
            return observed.snapshots[-1]
    return grads.snapshot(namespace)


def replay_window(
    shell: Any,
    window: FailedCell,
    *,
    allow_mutation: bool,
    seconds: float | None,
    progress: AbstractContextManager[Any] | None = None,
) -> Observed:
    """Re-execute ``window`` in an overlay of the kernel's namespace and report what it did; with
    ``allow_mutation`` with saved tensors kept as ``allow_mutation_on_saved_tensors`` keeps them
    (:mod:`.reference`: the gradient reference). The
    kernel is left as before; :class:`~inplace_magic.replay.time_limit.TimeLimitExceeded` and
    KeyboardInterrupt come out of here after it was put back."""
    overlay = Overlay(shell.user_ns)
    observed = Observed()
    report = ReplayReport()

    def under(rerun: KernelRerun) -> None:
        # the reference's rule kept by the undo log's own mode (torch's context is a second one)
        kept = SavedValuesKept().kept_under(rerun.undo) if allow_mutation else contextlib.nullcontext()
        with kept, _watching_backward(observed, overlay):
            observed.error = rerun()
            observed.failed = observed.error is not None
            # inside: the undo log puts the leaves' .grad back when the replay ends
            observed.final = _final(observed, overlay)
            observed.grads_then = None

    replay_in_kernel(_OverlayShell(shell, overlay), window, under, progress, seconds=seconds, report=report)
    observed.not_rewound = list(report.not_rewound)
    overlay.clear()  # the fixed classes and the objects built from them go now, not at the next collection
    return observed
