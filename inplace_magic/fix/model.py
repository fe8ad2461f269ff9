"""The fix as data: where the diagnosis points, what a candidate rewrite changes, and what the CLI prints.

A :class:`Candidate` is produced by one fix kind from the cells alone; :mod:`.verify` later adds what
the sandboxed run observed, and :mod:`.rank` turns both into the ``fixes`` JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

FixKind = Literal[
    "inplace_kwarg",
    "augmented_assign",
    "inplace_method",
    "clone_before",
    "alias_clone",
    "no_grad",
    "view_clone",
    "reorder_step",
    "allow_mutation",
    "other",
]

Role = Literal["inplace", "saved_by", "merge", "also"]


@dataclass(frozen=True)
class Site:
    """A cell line the diagnosis names, and in which role."""

    role: Role
    cell: int
    line: int


@dataclass
class Candidate:
    """One rewrite of the cells, before it was run."""

    kind: FixKind
    title: str
    description: str
    cells: dict[int, str]  # index -> new full text, changed cells only
    changes_semantics: bool = False
    fallback: bool = False  # offered only when nothing precise works (ranked last among verified)
    notes: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    """What the sandbox saw when it ran a candidate."""

    ran: bool  # the sandbox answered (False: not run, timed out or the sandbox failed)
    error: dict[str, Any] | None = None  # {"type", "message", "kind", "cell", "line"}
    gradients: int = 0  # .grad tensors found, or autograd.grad calls
    backward_calls: int = 0
    finite: bool = True
    matches_reference: bool | None = None
    compared: int = 0
    mismatched: list[str] = field(default_factory=list)
    timed_out: bool = False
    ended: str | None = None  # how the sandbox process ended while running it (os._exit, a crash)
    hazards: int | None = None  # silent writes the audit of the run found (an audited run only)


class Edit(TypedDict, total=False):
    cell: int
    file: str
    line: int
    old: str
    new: str


class Fix(TypedDict, total=False):
    kind: str
    title: str
    description: str
    changes_semantics: bool
    verified: bool
    preserves_gradients: bool | None
    edits: list[Edit]
    cells: dict[str, str]
    next_error: dict[str, Any]
    notes: list[str]


@dataclass
class Verdict:
    """What the run of a candidate means for the user."""

    verified: bool = False
    preserves_gradients: bool | None = None
    notes: list[str] = field(default_factory=list)
    next_error: dict[str, Any] | None = None  # the in-place error this fix uncovers
    error: dict[str, Any] | None = None  # what the fixed code raised, if anything
