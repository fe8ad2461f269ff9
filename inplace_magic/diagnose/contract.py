"""The diagnosis as JSON: the typed contract of ``Diagnosis.to_json()``.

This is what ``inplace-magic check --json`` prints, what a notebook output carries under
:data:`~inplace_magic.present.html.MIME_TYPE`, and what the panel's state is built from. The JSON
Schema in ``schema/wire/diagnosis.schema.json`` is generated from these classes
(``make protocol``); add a field here and regenerate. Keys that only some diagnoses have are in the
``total=False`` half of each pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from ..record.family import Kind


class _Place(TypedDict, total=False):
    cell: int  # the cell's index (a notebook's In[] number in a kernel)
    cell_id: str  # the notebook's cell id, where the kernel saw it
    file: str | None  # for code outside the cells; None only when the frame named no file


class _Line(TypedDict):
    line: int  # 1-based within the cell or file
    code: str  # the line's text, stripped
    function: str  # the enclosing function, "<module>" at top level


class LocationJSON(_Line, _Place):
    """A line of user code: in a notebook cell (``cell``, maybe ``cell_id``) or in a ``file``."""


class _MaybeLine(_Place, total=False):
    line: int
    code: str
    function: str


class _SiteBase(_MaybeLine):
    op: str  # aten op ("aten.relu_.default"), torch function ("Tensor.add_") or Function.apply
    module: str | None  # qualified module path, e.g. "encoder.block2.act"


class SiteJSON(_SiteBase, total=False):
    """The writer or the saver: an operation at a line (the line's keys are absent when unknown)."""

    module_type: str  # e.g. "ReLU(inplace=True)"
    optimizer: str  # "Adam.step() call #1"
    role: str  # how the tensor was involved: "saved its output", "created the view"...
    node: str  # the saver's autograd node, e.g. "ReluBackward0"
    names: list[str]  # Python names bound to the written tensor
    defined_at: LocationJSON  # the line that constructed the module (where a fix often edits)
    stack: list[LocationJSON]  # enclosing user frames, innermost first
    autograd_function: str  # the custom autograd.Function whose forward holds this line


class TensorJSON(TypedDict):
    """The tensor that was overwritten."""

    shape: list[int]
    dtype: str  # "float32"
    saved_version: int | None  # its version when it was saved for backward
    version: int | None  # its version when backward needed it
    parameter: str | None  # "encoder.0.weight" when it is a parameter
    is_leaf: bool
    requires_grad: bool
    nested: bool  # a nested tensor: its ragged dimensions are -1 in ``shape``


class BranchStepJSON(_MaybeLine):
    """One op on a branch between the split and the merge."""

    op: str
    module: str | None


class _SkipEndBase(_MaybeLine):
    op: str | None


class SkipEndJSON(_SkipEndBase, total=False):
    """Where the branched value was produced (``from``) or where the branches meet (``merge``)."""

    kind: str  # the merge: "add", "cat", "mul", ...
    module: str | None  # the module that merges
    stack: list[LocationJSON]  # the user's lines that called the code of this line (a library block)


# "from" is a Python keyword: the functional syntax declares it
SkipJSON = TypedDict(
    "SkipJSON",
    {
        "from": SkipEndJSON,  # where the branched value was produced or captured
        "merge": SkipEndJSON,
        # the write sits on a branch ("before" the merge), is the merge ("inside"), or comes "after"
        "writer_position": Literal["before", "inside", "after"],
        "saver_branch": list[BranchStepJSON],  # from the split to the merge through the saver
        "writer_branch": list[BranchStepJSON],  # from the split to the merge through the writer
    },
)
SkipJSON.__doc__ = "The overwritten value fans out and the branches meet again: a skip connection, a branch."


class _ErrorBase(TypedDict):
    type: str  # "RuntimeError"
    message: str
    cell: int | None
    line: int | None


class ErrorJSON(_ErrorBase, total=False):
    """The user's original error and where it was raised."""

    file: str
    cell_id: str  # the notebook's cell id of the failing cell, where the kernel saw it


class EditJSON(TypedDict, total=False):
    """One line-level edit of a fix, 1-based within its cell (or file)."""

    cell: int
    file: str
    line: int
    old: str  # the lines it replaces ("" inserts before ``line``)
    new: str  # the lines it puts there ("" deletes)


class _FixBase(TypedDict):
    kind: str  # the fix kind (fix/kinds/)
    title: str
    description: str
    changes_semantics: bool
    verified: bool  # its backward ran without the error
    preserves_gradients: bool | None  # None: not compared
    edits: list[EditJSON]
    cells: dict[str, str]  # cell index -> the fixed full text of each changed cell
    notes: list[str]


class FixJSON(_FixBase, total=False):
    """A candidate fix, as the fix stage ranked it."""

    next_error: dict[str, Any]  # the next in-place error this fix uncovers


class DiagnosisJSON(TypedDict):
    """One in-place autograd error, diagnosed."""

    status: Literal["inplace_error"]
    error: ErrorJSON
    kind: Kind
    member: str | None  # which error of the family (record/family.py), e.g. "negative_slope"
    inplace: SiteJSON | None  # the in-place writer
    saved_by: SiteJSON | None  # the saver (or the op that created the written view)
    skip: SkipJSON | None
    tensor: TensorJSON | None
    optimizer_step: bool  # the writer is an optimizer step between forward and backward
    also_written_by: list[SiteJSON]
    headline: str
    explanation: str
    notes: list[str]
    limits: list[str]  # what the engine could not know, in words (also in the explanation)
    reproduced: bool  # the replay raised the same kind of error
    fixes: list[FixJSON]


def without_diagnosis(status: str, error: Mapping[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    """A report's fields when nothing was diagnosed: the keys a diagnosis has, empty, so that every
    report (the check's, a process that ended early, a launch whose ranks were lost) has one shape."""
    return {
        "status": status,
        "error": dict(error) if error is not None else None,
        "kind": None,
        "member": None,
        "inplace": None,
        "saved_by": None,
        "skip": None,
        "tensor": None,
        "limits": [],
        "fixes": [],
        "notes": list(notes),
    }
