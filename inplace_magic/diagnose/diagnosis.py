"""The diagnosis as plain data. Every face (text report, CLI JSON, widget, sidebar) renders this.

Every ``to_json`` keeps one regular shape: the keys of a type are always present when their value
is known, optional keys are listed in each docstring, and a location is always ``cell`` (with
``cell_id`` in a live notebook) or ``file``, plus ``line``, ``code`` and ``function``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from ..record.family import Kind
from ..record.frames import installed_path, is_library_file
from .contract import (
    BranchStepJSON,
    DiagnosisJSON,
    ErrorJSON,
    FixJSON,
    LocationJSON,
    SiteJSON,
    SkipJSON,
    TensorJSON,
)

WriterPosition = Literal["before", "inside", "after"]

# How a label names a cell: a script's or a notebook file's cells by index ("cell 0"); a live kernel's
# cells by the In[] prompt the notebook shows beside them (the kernel face sets "cell [{}]" while it
# diagnoses and reports).
CELL_NAME: ContextVar[str] = ContextVar("CELL_NAME", default="cell {}")


def cell_name(cell: int) -> str:
    """The cell as labels name it here: "cell 0" in a script, "cell [4]" in a live kernel."""
    return CELL_NAME.get().format(cell)


@dataclass(frozen=True)
class Location:
    """A line of the user's code: a notebook cell (``cell``, ``cell_id``) or a file (``file``)."""

    line: int
    code: str
    function: str
    cell: int | None = None
    cell_id: str | None = None
    file: str | None = None

    def to_json(self) -> LocationJSON:
        out: dict[str, Any] = {}
        if self.cell is not None:
            out["cell"] = self.cell
            if self.cell_id:
                out["cell_id"] = self.cell_id
        else:
            out["file"] = self.file
        out["line"] = self.line
        out["code"] = self.code
        out["function"] = self.function
        return cast(LocationJSON, out)

    @property
    def library(self) -> bool:
        """The line is in an installed library's code (torchvision, timm), not the user's."""
        return self.cell is None and self.file is not None and is_library_file(self.file)

    def label(self) -> str:
        if self.cell is not None:
            where = cell_name(self.cell)
        else:
            # an installed library's file by the name people know it by, not its site-packages path
            where = (installed_path(self.file) if self.library and self.file else None) or self.file or "?"
        return f"{where}, line {self.line}"


@dataclass(frozen=True)
class OpSite:
    """An operation: the writer or the saver (or the op that created a written view).

    JSON: the location's keys, ``op`` and ``module`` always; ``module_type``, ``optimizer``, ``role``,
    ``node``, ``autograd_function``, ``names``, ``defined_at`` and ``stack`` when known.
    """

    op: str  # aten op ("aten.relu_.default"), torch function ("Tensor.add_") or Function.apply
    location: Location | None
    module: str | None = None  # qualified module path, e.g. "encoder.block2.act"
    module_type: str | None = None  # e.g. "ReLU(inplace=True)"
    defined_at: Location | None = None  # the line that constructed the module (where a fix edits)
    stack: tuple[Location, ...] = ()  # enclosing user frames, innermost first, after ``location``
    names: tuple[str, ...] = ()  # Python names bound to the written tensor
    optimizer: str | None = None  # "Adam.step() call #1"
    role: str | None = None  # how the tensor was involved: "saved its output", "created the view"...
    node: str | None = None  # autograd node, for savers
    autograd_function: str | None = None  # the custom autograd.Function whose forward this line is in

    @property
    def module_class(self) -> str | None:
        """The module's class (``ReLU``): how a sentence names it; ``module_type`` is its full repr."""
        return self.module_type.split("(", 1)[0] if self.module_type else None

    def to_json(self) -> SiteJSON:
        out: dict[str, Any] = dict(self.location.to_json()) if self.location else {}
        out["op"] = self.op
        out["module"] = self.module
        for key in ("module_type", "optimizer", "role", "node", "autograd_function"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.names:
            out["names"] = list(self.names)
        if self.defined_at:
            out["defined_at"] = self.defined_at.to_json()
        if self.stack:
            out["stack"] = [loc.to_json() for loc in self.stack]
        return cast(SiteJSON, out)


@dataclass(frozen=True)
class TensorSummary:
    shape: tuple[int, ...]
    dtype: str
    saved_version: int | None
    version: int | None
    parameter: str | None = None
    is_leaf: bool = False
    requires_grad: bool = False
    nested: bool = False  # a nested tensor: ragged dimensions are -1 in ``shape``

    def to_json(self) -> TensorJSON:
        out = asdict(self)
        out["shape"] = list(self.shape)
        return cast(TensorJSON, out)


@dataclass(frozen=True)
class BranchStep:
    op: str
    module: str | None
    location: Location | None

    def to_json(self) -> BranchStepJSON:
        location: dict[str, Any] = dict(self.location.to_json()) if self.location else {}
        out: dict[str, Any] = {"op": self.op, "module": self.module, **location}
        return cast(BranchStepJSON, out)


@dataclass(frozen=True)
class Skip:
    """The overwritten value fans out and the branches meet again: a skip connection or a branch.

    JSON: ``from`` (a location and ``op``; ``stack`` when the producer ran in code called from a
    cell), ``merge`` (a location, ``op``, ``kind``, ``module``; ``stack`` when the merge ran inside
    an imported block), ``writer_position`` and both branches as lists of steps.
    """

    source: Location | None  # where the branched value was produced or captured
    source_op: str | None
    merge: Location | None
    merge_op: str
    merge_kind: str  # add, cat, mul, ...
    merge_module: str | None
    saver_branch: tuple[BranchStep, ...]  # from the split to the merge through the saver
    writer_branch: tuple[BranchStep, ...]  # from the split to the merge through the writer
    # the write is on a branch (before the merge), is the merge (inside), or comes after it
    writer_position: WriterPosition = "before"
    merge_stack: tuple[Location, ...] = ()  # the user's lines that called the merging block
    source_stack: tuple[Location, ...] = ()

    def to_json(self) -> SkipJSON:
        source: dict[str, Any] = {**(self.source.to_json() if self.source else {}), "op": self.source_op}
        if self.source_stack:
            source["stack"] = [loc.to_json() for loc in self.source_stack]
        merge: dict[str, Any] = {
            **(self.merge.to_json() if self.merge else {}),
            "op": self.merge_op,
            "kind": self.merge_kind,
            "module": self.merge_module,
        }
        if self.merge_stack:
            merge["stack"] = [loc.to_json() for loc in self.merge_stack]
        out: dict[str, Any] = {
            "from": source,
            "merge": merge,
            "writer_position": self.writer_position,
            "saver_branch": [s.to_json() for s in self.saver_branch],
            "writer_branch": [s.to_json() for s in self.writer_branch],
        }
        return cast(SkipJSON, out)


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    location: Location | None

    def to_json(self) -> ErrorJSON:
        out: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "cell": self.location.cell if self.location else None,
            "line": self.location.line if self.location else None,
            **({"file": self.location.file} if self.location and self.location.file else {}),
            **({"cell_id": self.location.cell_id} if self.location and self.location.cell_id else {}),
        }
        return cast(ErrorJSON, out)


@dataclass
class Diagnosis:
    """JSON: every key below, always; ``member`` names the family member (record/family.py) and
    ``limits`` says what the engine could not know (each an English sentence, often empty)."""

    kind: Kind
    error: ErrorInfo
    inplace: OpSite | None
    saved_by: OpSite | None
    tensor: TensorSummary | None
    skip: Skip | None = None
    optimizer_step: bool = False  # the writer is an optimizer step between forward and backward
    also_written_by: list[OpSite] = field(default_factory=list)
    headline: str = ""
    explanation: str = ""
    notes: list[str] = field(default_factory=list)
    reproduced: bool = True  # the replay raised the same kind of error
    fixes: list[dict[str, Any]] = field(default_factory=list)
    member: str | None = None  # which member of the family: "saved_tensor_modified", "negative_slope"...
    limits: list[str] = field(default_factory=list)  # what the engine could not know, in words

    def to_json(self) -> DiagnosisJSON:
        return {
            "status": "inplace_error",
            "error": self.error.to_json(),
            "kind": self.kind,
            "member": self.member,
            "inplace": self.inplace.to_json() if self.inplace else None,
            "saved_by": self.saved_by.to_json() if self.saved_by else None,
            "skip": self.skip.to_json() if self.skip else None,
            "tensor": self.tensor.to_json() if self.tensor else None,
            "optimizer_step": self.optimizer_step,
            "also_written_by": [site.to_json() for site in self.also_written_by],
            "headline": self.headline,
            "explanation": self.explanation,
            "notes": list(self.notes),
            "limits": list(self.limits),
            "reproduced": self.reproduced,
            "fixes": cast(list[FixJSON], list(self.fixes)),  # built by the fix stage as FixJSON
        }
