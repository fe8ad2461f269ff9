"""The diagnosis panel's wire protocol, Python side: the synced state and the messages.

The TypeScript side is ``src/panel/protocol.ts``; both carry :data:`PROTOCOL_VERSION` and must
change together. The state is small and self-contained: the front end never needs the raw diagnosis.
"""

from __future__ import annotations

from typing import Literal, TypedDict

PROTOCOL_VERSION = 1

NodeRole = Literal[
    "tensor", "leaf", "saver", "writer", "optimizer", "split", "merge", "step", "backward", "caller", "more"
]
EdgeKind = Literal["data", "skip", "saved", "writes", "needs", "calls"]
Label = Literal["verified", "unverified", "gradient-preserving", "changes-semantics"]
ApplyPath = Literal["extension", "kernel-file", "copy", "none"]


class Where(TypedDict, total=False):
    """A line of user code: a notebook cell (index, maybe its id) or a file."""

    cell: int
    cell_id: str
    file: str
    line: int
    code: str
    function: str
    label: str  # "cell 0, line 22"


class SiteView(TypedDict):
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
    event: Literal["created", "saved", "view", "written", "needed"]
    version: int | None
    actor: str
    where: Where | None
    conflict: bool
    text: str


class DiffLine(TypedDict):
    op: Literal[" ", "-", "+", "@"]  # "@": a hunk header (a line number)
    text: str


class TargetDiff(TypedDict):
    cell: int | None
    file: str | None
    label: str
    lines: list[DiffLine]


class EditView(TypedDict, total=False):
    cell: int
    file: str
    line: int
    old: str
    new: str


class FixView(TypedDict):
    index: int
    kind: str
    title: str
    description: str
    verified: bool
    preserves_gradients: bool | None
    changes_semantics: bool
    labels: list[Label]
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
    version: int
    id: str
    kind: str
    headline: str
    explanation: str
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
    """Front end -> kernel, when no JupyterLab extension claimed the Apply event."""

    type: Literal["apply", "undo"]
    protocol: int
    diagnosisId: str
    fixIndex: int
    requestId: str  # echoed in the outcome: a repeated request still changes the trait


class Outcome(TypedDict, total=False):
    """Kernel -> front end (the ``outcome`` trait): what the kernel-side path did."""

    type: Literal["apply", "undo"]
    fixIndex: int
    path: ApplyPath
    applied: bool
    message: str
    copy: list[dict[str, str]]  # [{"label": "cell 0", "text": fixed cell}] when the user must paste
    requestId: str
