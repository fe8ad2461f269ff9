"""The words the user reads are made once (inplace_magic/present/words.py): the text report, the HTML
report and the panel's state (which the panel and the sidebar draw) say the same thing about the same
fix and kind, and the HTML report keeps user text as text."""

from __future__ import annotations

from typing import Any

import pytest

from inplace_magic.diagnose.diagnosis import Diagnosis, ErrorInfo, Location, OpSite
from inplace_magic.panel.state import build_state
from inplace_magic.present.html import render_html
from inplace_magic.present.text import render_text
from inplace_magic.present.words import fix_label, kind_name

EVIL = "<script>alert(1)</script>"


def _diagnosis(fix: dict[str, Any], kind: str = "version_counter") -> Diagnosis:
    where = Location(line=2, code=f"x += 1  # {EVIL}", function="forward", cell=0)
    return Diagnosis(
        kind=kind,  # type: ignore[arg-type]
        error=ErrorInfo("RuntimeError", "one of the variables needed ...", where),
        inplace=OpSite(op="aten.add_.Tensor", location=where, module="block"),
        saved_by=OpSite(op="aten.relu.default", location=where, role="saved its output"),
        tensor=None,
        headline=f"`block` overwrote {EVIL}",
        fixes=[fix],
    )


FIXES = {
    "verified, gradient-preserving": {"verified": True, "preserves_gradients": True},
    "verified, changes the training semantics": {"verified": True, "changes_semantics": True},
    "not verified": {"verified": False, "preserves_gradients": None},
}


@pytest.mark.parametrize("expected", sorted(FIXES))
def test_every_face_labels_a_fix_in_the_same_words(expected: str) -> None:
    fix = {
        "kind": "augmented_assign",
        "title": "Write x = x + 1",
        "edits": [],
        "cells": {},
        **FIXES[expected],
    }
    diagnosis = _diagnosis(fix)
    assert fix_label(fix) == expected
    assert f"SUGGESTED FIX ({expected})" in render_text(diagnosis)
    assert f"({expected})" in render_html(diagnosis)
    state = build_state(diagnosis.to_json())
    assert ", ".join(label["text"] for label in state["fixes"][0]["labels"]) == expected


@pytest.mark.parametrize("kind", ["version_counter", "leaf_inplace", "view_inplace", "other"])
def test_the_kind_is_named_once(kind: str) -> None:
    assert build_state(_diagnosis({}, kind).to_json())["kind_label"] == kind_name(kind)
    assert "_" not in kind_name(kind)


def test_the_html_report_keeps_user_text_as_text() -> None:
    html = render_html(_diagnosis({"title": EVIL, "verified": True}))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
