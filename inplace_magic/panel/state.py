"""The panel's state from a diagnosis dict: sites, tensor, graph, version timeline and fixes.

A pure function of ``Diagnosis.to_json()`` (and, optionally, the current cell sources for diffs with
context). It never raises on odd input: a missing part becomes ``None`` or an empty list. The words the
user reads come from :mod:`inplace_magic.present.words`, so the front end writes none of its own.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any, TypedDict

from .._version import __version__
from ..diagnose.contract import DiagnosisJSON, FixJSON, SiteJSON, SkipJSON, TensorJSON
from ..diagnose.diagnosis import cell_name
from ..present.segments import JSON_SCALARS, Cells, cell_ref, cells_and_ids, headline, plain, prose, text
from ..present.words import (
    APPLY_WAITS,
    LABEL_WORDS,
    VerificationStatus,
    can_apply,
    fix_label,
    fix_tags,
    kind_name,
    panel_mismatch,
    rerun_hint,
    verification_status,
)
from .graph import build_graph, part, short_op, tensor_label, where
from .protocol import (
    PROTOCOL_VERSION,
    DiffLine,
    EditView,
    ErrorView,
    FixLabel,
    FixView,
    PanelState,
    SiteView,
    SkipView,
    TargetDiff,
    TensorView,
    TimelineStep,
    Verification,
)

MAX_MESSAGE = 2000
MAX_FIXES = 6
CONTEXT = 2

Sources = Mapping[int, str]


def diagnosis_id(diag: DiagnosisJSON | Mapping[str, Any]) -> str:
    """A stable id: the same diagnosis always gets the same id (the sidebar and Apply key on it)."""
    given = diag.get("id")
    if isinstance(given, str) and given:
        return given
    canonical = json.dumps(diag, sort_keys=True, default=str, separators=(",", ":"))
    return "d" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def build_state(diag: DiagnosisJSON, sources: Sources | None = None) -> PanelState:
    """The synced state of the panel for ``diag`` (``Diagnosis.to_json()``)."""
    error = diag.get("error") or {}
    tensor = diag.get("tensor")
    writer = diag.get("inplace")
    saver = diag.get("saved_by")
    skip = diag.get("skip")
    error_view: ErrorView = {
        "type": str(error.get("type") or "RuntimeError"),
        "message": _clip(str(error.get("message") or ""), MAX_MESSAGE),
        "where": where(error),
    }
    failing = error_view["where"].get("cell") if error_view["where"] else None
    cells, ids = cells_and_ids(diag)
    head = headline(diag, cells)
    explanation = str(diag.get("explanation") or "")
    state: PanelState = {
        "version": PROTOCOL_VERSION,
        "mismatch": panel_mismatch(__version__, PROTOCOL_VERSION),
        "id": diagnosis_id(diag),
        "kind": str(diag.get("kind") or "other"),
        "kind_label": kind_name(diag.get("kind")),
        "headline": plain(head),
        "headline_parts": head,
        "explanation": explanation,
        "explanation_parts": prose(explanation, cells),
        "notes": [str(n) for n in diag.get("notes") or []],
        "error": error_view,
        "writer": _site(writer, "writer", diag) if writer else None,
        "saver": _site(saver, "saver", diag) if saver else None,
        "also_written_by": [_site(s, "writer", diag) for s in (diag.get("also_written_by") or [])[:4]],
        "tensor": _tensor(tensor) if tensor else None,
        "skip": _skip(skip) if skip else None,
        "optimizer_step": bool(diag.get("optimizer_step")),
        "reproduced": bool(diag.get("reproduced", True)),
        "cell_ids": ids,
        "graph": build_graph(diag),
        "timeline": build_timeline(diag),
        "fixes": [
            _fix(i, f, sources, failing, cells) for i, f in enumerate((diag.get("fixes") or [])[:MAX_FIXES])
        ],
    }
    _fill_cell_ids(state, cells)
    return state


def _fill_cell_ids(value: object, cells: Cells) -> None:
    """Give every cell reference the cell's id where any location of the diagnosis had it."""
    if not any(cells.values()):
        return  # no cell has an id (a terminal's shell, a script): there is nothing to give
    _fill(value, cells)


def _fill(value: object, cells: Cells) -> None:
    if isinstance(value, dict):
        cell = value.get("cell")
        named = ("label" in value and "line" in value) or "text" in value  # a location or a reference
        if isinstance(cell, int) and not isinstance(cell, bool) and named and "cell_id" not in value:
            cell_id = cells.get(cell)
            if cell_id:
                value["cell_id"] = cell_id
        for item in value.values():
            if type(item) not in JSON_SCALARS:
                _fill(item, cells)
    elif isinstance(value, list):
        for item in value:
            if type(item) not in JSON_SCALARS:
                _fill(item, cells)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _site(site: SiteJSON, which: str, diag: DiagnosisJSON) -> SiteView:
    if which == "writer":
        role = (
            "updated it in place (optimizer step)" if diag.get("optimizer_step") else "wrote into it in place"
        )
    else:
        role = str(site.get("role") or "saved it for backward")
    op = str(site.get("optimizer") or short_op(site.get("op")))
    return {
        "op": op,
        "op_full": str(site.get("op") or ""),
        "module": site.get("module"),
        "module_type": site.get("module_type"),
        "role": role,
        "where": where(site),
        "defined_at": where(site.get("defined_at")),
        "callers": [w for w in (where(c) for c in (site.get("stack") or [])[:3]) if w],
        "node": site.get("node"),
        "names": [str(n) for n in site.get("names") or []],
    }


def _tensor(tensor: TensorJSON) -> TensorView:
    return {
        "label": tensor_label(tensor),
        "shape": [int(n) for n in tensor.get("shape") or []],
        "dtype": str(tensor.get("dtype") or "?"),
        "parameter": tensor.get("parameter"),
        "is_leaf": bool(tensor.get("is_leaf")),
        "requires_grad": bool(tensor.get("requires_grad")),
        "saved_version": tensor.get("saved_version"),
        "version": tensor.get("version"),
    }


def _skip(skip: SkipJSON) -> SkipView:
    merge = skip.get("merge") or {}
    return {
        "source": where(skip.get("from")),
        "merge": where(merge),
        "merge_kind": str(merge.get("kind") or ""),
    }


def _actor(site: SiteJSON | None) -> str:
    if not site:
        return "?"
    op = site.get("optimizer") or short_op(site.get("op"))
    return f"`{site['module']}` ({op})" if site.get("module") else f"`{op}`"


def build_timeline(diag: DiagnosisJSON) -> list[TimelineStep]:
    """The tensor's story: who saved it at which version, who wrote it, who needed the old one."""
    kind = diag.get("kind")
    tensor = part(diag.get("tensor"))
    writer, saver = diag.get("inplace"), diag.get("saved_by")
    saved_v, now_v = tensor.get("saved_version"), tensor.get("version")
    steps: list[TimelineStep] = []
    if kind == "leaf_inplace":
        steps.append(_step("created", tensor.get("version"), "a leaf tensor that requires grad", None, False))
    elif kind == "view_inplace" and saver:
        steps.append(_step("view", None, _actor(saver), saver, False))
    elif saver:
        steps.append(_step("saved", saved_v, _actor(saver), saver, False))
    if writer:
        written_v = saved_v + 1 if isinstance(saved_v, int) else now_v
        steps.append(
            _step("written", written_v if kind == "version_counter" else None, _actor(writer), writer, True)
        )
    for other in (diag.get("also_written_by") or [])[:4]:
        steps.append(_step("written", None, _actor(other), other, True))
    if kind == "version_counter" and saver:
        backward = str(saver.get("node") or "its backward")
        steps.append(_step("needed", saved_v, backward, diag.get("error"), True, now_v))
    return steps


def _step(
    event: str,
    version: int | None,
    actor: str,
    loc: Mapping[str, Any] | None,
    conflict: bool,
    found: int | None = None,
) -> TimelineStep:
    v = f" v{version}" if version is not None else ""
    text = {
        "created": f"created as {actor}{v}",
        "saved": f"saved at{v} by {actor}",
        "view": f"view created by {actor}",
        "written": f"written in place by {actor}" + (f" (→{v.strip()})" if v else ""),
        "needed": f"needed at{v} by {actor}" + (f", but it is at v{found}" if found is not None else ""),
    }[event]
    return {
        "event": event,  # type: ignore[typeddict-item]
        "version": version,
        "actor": actor,
        "where": where(loc),
        "conflict": conflict,
        "text": text,
    }


def _labels(fix: Mapping[str, Any], status: VerificationStatus) -> list[FixLabel]:
    return [{"tag": tag, "text": LABEL_WORDS[tag]} for tag in fix_tags(fix, status)]


def verification(fix: Mapping[str, Any], status: VerificationStatus, detail: str = "") -> Verification:
    return {
        "status": status,
        "label": fix_label(fix, status),
        "detail": detail or APPLY_WAITS.get(status, ""),
    }


def _fix(index: int, fix: FixJSON, sources: Sources | None, failing: int | None, cells: Cells) -> FixView:
    edits: list[EditView] = []
    for raw in fix.get("edits") or []:
        edit: EditView = {
            "line": int(raw.get("line", 0)),
            "old": str(raw.get("old", "")),
            "new": str(raw.get("new", "")),
        }
        if isinstance(raw.get("cell"), int):
            edit["cell"] = raw["cell"]
        else:
            edit["file"] = str(raw.get("file") or "?")
        edits.append(edit)
    fixed = {str(k): str(v) for k, v in (fix.get("cells") or {}).items()}
    status = verification_status(fix)
    description = str(fix.get("description") or "")
    rerun = rerun_hint((e["cell"] for e in edits if "cell" in e), failing)
    return {
        "index": index,
        "kind": str(fix.get("kind") or "other"),
        "title": str(fix.get("title") or fix.get("kind") or "Fix"),
        "description": description,
        "description_parts": prose(description, cells),
        "verified": bool(fix.get("verified")),
        "preserves_gradients": fix.get("preserves_gradients"),
        "changes_semantics": bool(fix.get("changes_semantics")),
        "labels": _labels(fix, status),
        "verification": verification(fix, status),
        "can_apply": can_apply(status) and bool(edits or fixed),
        "rerun": rerun,
        "rerun_parts": prose(rerun, cells),
        "diffs": build_diffs(edits, fixed, sources),
        "edits": edits,
        "cells": fixed,
        "before": {k: sources[int(k)] for k in fixed if sources and k.isdigit() and int(k) in sources},
        "notes": [str(n) for n in fix.get("notes") or []],
    }


def build_diffs(edits: list[EditView], cells: Mapping[str, str], sources: Sources | None) -> list[TargetDiff]:
    """One diff per changed cell or file: a unified diff when the old cell text is known, else the edits."""
    diffs: list[TargetDiff] = []
    done: set[int] = set()
    for key in sorted(cells, key=lambda k: int(k) if k.isdigit() else 0):
        index = int(key) if key.isdigit() else -1
        if sources is not None and index in sources:
            diffs.append(_cell_diff(index, sources[index], cells[key]))
            done.add(index)
    targets: dict[tuple[int | None, str | None], list[EditView]] = {}
    for edit in edits:
        cell = edit.get("cell")
        if cell is not None and cell in done:
            continue
        targets.setdefault((cell, edit.get("file")), []).append(edit)
    for (cell, file), group in targets.items():
        lines: list[DiffLine] = []
        for edit in sorted(group, key=lambda e: e.get("line", 0)):
            lines.append({"op": "@", "text": f"line {edit.get('line', '?')}"})
            lines += [{"op": "-", "text": t} for t in edit.get("old", "").splitlines()]
            lines += [{"op": "+", "text": t} for t in edit.get("new", "").splitlines()]
        label = cell_name(cell) if cell is not None else str(file)
        parts = [cell_ref(cell, None)] if cell is not None else [text(label)]
        diffs.append(
            {
                "cell": cell,
                "file": None if cell is not None else file,
                "label": label,
                "parts": parts,
                "lines": lines,
            }
        )
    return diffs


def _cell_diff(index: int, old: str, new: str) -> TargetDiff:
    lines: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, old.splitlines(), new.splitlines()).get_grouped_opcodes(
        CONTEXT
    ):
        a_lines, b_lines = old.splitlines(), new.splitlines()
        lines.append({"op": "@", "text": f"line {group[0][1] + 1}"})
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [{"op": " ", "text": t} for t in a_lines[i1:i2]]
                continue
            lines += [{"op": "-", "text": t} for t in a_lines[i1:i2]]
            lines += [{"op": "+", "text": t} for t in b_lines[j1:j2]]
    return {
        "cell": index,
        "file": None,
        "label": cell_name(index),
        "parts": [cell_ref(index, None)],
        "lines": lines,
    }


class FixVerdict(TypedDict, total=False):
    """What the kernel found out about a fix while its panel was shown (:meth:`DiagnosisPanel.update_fix`).

    ``status`` is required; the other fields default to what the status says ("verified" is verified and
    gradient-preserving, "changes_semantics" verified with other gradients, the rest not verified).
    """

    status: VerificationStatus
    verified: bool
    preserves_gradients: bool | None
    detail: str  # what the verification found, shown under the fix
    notes: list[str]  # replace the fix's notes


_VERDICT_DEFAULTS: dict[VerificationStatus, tuple[bool, bool | None]] = {
    "verifying": (False, None),
    "verified": (True, True),
    "changes_semantics": (True, False),
    "did_not_help": (False, None),
    "not_verified": (False, None),
}


def with_verdict(fix: FixView, verdict: FixVerdict | Mapping[str, Any]) -> FixView:
    """``fix`` as ``verdict`` leaves it: its labels, verification line and whether Apply is offered."""
    status = verdict.get("status")
    if status not in _VERDICT_DEFAULTS:
        raise ValueError(f"unknown verification status {status!r}; one of {', '.join(_VERDICT_DEFAULTS)}")
    verified, preserves = _VERDICT_DEFAULTS[status]
    updated: FixView = copy.deepcopy(fix)
    updated["verified"] = bool(verdict.get("verified", verified))
    updated["preserves_gradients"] = verdict.get("preserves_gradients", preserves)
    detail = str(verdict.get("detail") or "")
    if "notes" in verdict:
        # the verdict's own line is shown once, as the verification line under the fix, not again
        # among its notes (the text report, which has no such line, keeps it among them)
        updated["notes"] = [str(note) for note in verdict["notes"] or [] if str(note) != detail]
    updated["labels"] = _labels(updated, status)
    updated["verification"] = verification(updated, status, detail)
    updated["can_apply"] = can_apply(status) and bool(updated["edits"] or updated["cells"])
    return updated
