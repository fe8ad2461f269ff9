"""The diagnosis panel's wire protocol: its synced traits and the messages of its comm.

This module is the one source of truth. ``make protocol`` writes it as JSON Schema
(``schema/wire/panel.schema.json``) and generates the TypeScript types from that
(``src/panel/wire.ts``); tests regenerate both and diff. The kernel checks every message from the
front end against the classes here (:func:`~.wire.problem`).

The state is small and self-contained, and carries the words the user reads (labels, kind names,
re-run hints, the version-mismatch message): the front end draws, it does not compose. The front end
never describes a fix to the kernel: an :class:`ApplyRequest` names a diagnosis and a fix index, and
the kernel applies the fix it issued under them.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from ..present.segments import Segment
from ..present.words import LabelTag, VerificationStatus

PROTOCOL_VERSION = 3

NodeRole = Literal[
    "tensor", "leaf", "saver", "writer", "optimizer", "split", "merge", "step", "backward", "caller", "more"
]
EdgeKind = Literal["data", "skip", "saved", "writes", "needs", "calls"]
TimelineEvent = Literal["created", "saved", "view", "written", "needed"]
DiffOp = Literal[" ", "-", "+", "@"]
ApplyPath = Literal["extension", "kernel-file", "copy", "none"]
RequestType = Literal["apply", "undo"]
OutcomeType = Literal["apply", "undo", "update"]

# the Literal aliases by name, for the schema (at runtime an alias is just its Literal)
ALIASES = {
    "NodeRole": NodeRole,
    "EdgeKind": EdgeKind,
    "TimelineEvent": TimelineEvent,
    "DiffOp": DiffOp,
    "FixLabelTag": LabelTag,
    "VerificationStatus": VerificationStatus,
    "ApplyPath": ApplyPath,
    "RequestType": RequestType,
    "OutcomeType": OutcomeType,
}


class _WhereBase(TypedDict):
    line: int  # 1-based within the cell or file
    label: str  # "cell [4], line 22"
    parts: list[Segment]  # the label, its cell as a reference


class Where(_WhereBase, total=False):
    """A line of user code: a notebook cell (its index, maybe its id) or a file."""

    cell: int
    cell_id: str
    file: str
    code: str
    function: str


class SiteView(TypedDict):
    """The writer or the saver, as the panel shows it."""

    op: str  # short: "add_", "relu_", "Adam.step()"
    op_full: str
    module: str | None
    module_type: str | None
    role: str  # "overwrote it in place", "saved its output", ...
    where: Where | None
    defined_at: Where | None
    callers: list[Where]
    node: str | None  # autograd node of a saver
    names: list[str]


class TensorView(TypedDict):
    label: str  # "float32[32, 16]"
    shape: list[int]
    dtype: str
    parameter: str | None
    is_leaf: bool
    requires_grad: bool
    saved_version: int | None
    version: int | None


class SkipView(TypedDict):
    source: Where | None
    merge: Where | None
    merge_kind: str


class GraphNode(TypedDict):
    id: str
    roles: list[NodeRole]
    op: str
    module: str | None
    title: str  # the node's first line: "relu_ · block.act", "split · h", "merge (add) · block"
    text: str  # the code line, or what the node stands for
    where: Where | None
    level: int  # 0: the conflict itself; 1: the branches; 2: call sites ("expand" shows more)


class GraphEdge(TypedDict):
    id: str
    source: str
    target: str
    kind: EdgeKind
    label: str  # a shape, or the relation ("needs v1")
    highlight: bool
    broken: bool


class GraphView(TypedDict):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    max_level: int
    omitted: int  # nodes dropped by the size cap


class TimelineStep(TypedDict):
    event: TimelineEvent
    version: int | None
    actor: str
    where: Where | None
    conflict: bool
    text: str


class DiffLine(TypedDict):
    op: DiffOp  # "@": a hunk header (a line number)
    text: str


class TargetDiff(TypedDict):
    cell: int | None
    file: str | None
    label: str
    parts: list[Segment]  # the label, its cell as a reference
    lines: list[DiffLine]


class _EditBase(TypedDict):
    line: int  # 1-based; an empty ``old`` inserts before it
    old: str  # the lines the edit replaces, as the diagnosis saw them
    new: str


class EditView(_EditBase, total=False):
    """One line-level edit: of a cell (by index) or of a file."""

    cell: int
    file: str


class FixLabel(TypedDict):
    """One label of a fix: ``tag`` for its style, ``text`` for the user."""

    tag: LabelTag
    text: str  # "verified", "changes the training semantics"


class Verification(TypedDict):
    """How far the kernel got in checking a fix; it updates this while the panel is shown."""

    status: VerificationStatus
    label: str  # "verifying…", "verified, gradient-preserving", "did not help"
    detail: str  # why Apply waits or is not offered, or what the verification found ("" when nothing)


class FixView(TypedDict):
    """A fix the kernel issued: what it changes and how far it can be trusted."""

    index: int  # what an apply request names
    kind: str
    title: str
    description: str
    description_parts: list[Segment]  # the description, its cells as references
    verified: bool
    preserves_gradients: bool | None
    changes_semantics: bool
    labels: list[FixLabel]
    verification: Verification
    can_apply: bool  # the kernel offers this fix now (not while it is verifying it, not when it failed)
    rerun: str  # what to re-run after applying it: "Then re-run cell [2] and cell [3]."
    rerun_parts: list[Segment]
    diffs: list[TargetDiff]
    edits: list[EditView]
    cells: dict[str, str]  # cell index -> fixed full text (what "copy" offers)
    before: dict[str, str]  # cell index -> full text at diagnosis time, when known (stale-edit check)
    notes: list[str]


class ErrorView(TypedDict):
    type: str
    message: str
    where: Where | None


class PanelState(TypedDict):
    """The ``state`` trait: one diagnosis, everything the panel draws."""

    version: int  # PROTOCOL_VERSION; ``version`` and ``mismatch`` keep their meaning in every version
    mismatch: str  # what a front end that does not speak ``version`` shows
    id: str
    kind: str
    kind_label: str  # the kind in plain words
    headline: str  # in one line of text (what the text report says)
    headline_parts: list[Segment]  # short module names (their repr on hover), no comments, cell references
    explanation: str
    explanation_parts: list[Segment]
    notes: list[str]
    error: ErrorView
    writer: SiteView | None
    saver: SiteView | None
    also_written_by: list[SiteView]
    tensor: TensorView | None
    skip: SkipView | None
    optimizer_step: bool
    reproduced: bool
    cell_ids: dict[str, str]  # cell index -> notebook cell id, where the kernel saw it
    graph: GraphView
    timeline: list[TimelineStep]
    fixes: list[FixView]


class ApplyRequest(TypedDict):
    """Front end -> kernel, when no JupyterLab extension claimed the Apply event. Never carries code."""

    type: RequestType
    protocol: int
    diagnosisId: str
    fixIndex: int
    requestId: str  # echoed in the outcome: a repeated request still changes the trait


class CopyItem(TypedDict):
    label: str  # "cell 0"
    text: str  # the fixed cell, to paste over it


class Outcome(TypedDict):
    """Kernel -> front end (the ``outcome`` trait): what the kernel did with a request, or why not.

    ``type`` "update" answers a change of a synced trait from the page, which the kernel ignores.
    """

    type: OutcomeType
    fixIndex: int  # -1 when the request named no fix
    path: ApplyPath
    applied: bool
    message: str
    copy: list[CopyItem]  # when the user must paste the fixed cells
    requestId: str  # the request's; "" for an update


class PanelModel(TypedDict):
    """The widget's synced traits. Only the kernel writes them: a change from the page is ignored."""

    state: PanelState
    outcome: Outcome | None
