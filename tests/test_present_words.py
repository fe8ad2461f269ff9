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


def test_a_kernel_names_cells_by_their_prompt_everywhere() -> None:
    from inplace_magic.ipython.display import prompt_cell_names

    diagnosis = _diagnosis(
        {"title": "t", "edits": [{"cell": 0, "line": 2, "old": "x += 1", "new": "x = x + 1"}]}
    )
    assert "cell 0, line 2" in render_text(diagnosis)  # a script's cells: by index
    with prompt_cell_names():
        text, html, state = render_text(diagnosis), render_html(diagnosis), build_state(diagnosis.to_json())
    assert "cell [0], line 2" in text and "cell 0" not in text.replace("cell [0]", "")
    assert "cell [0], line 2" in html
    assert state["writer"]["where"]["label"] == "cell [0], line 2"  # type: ignore[index]
    assert state["fixes"][0]["diffs"][0]["label"] == "cell [0]"
    assert state["fixes"][0]["rerun"] == "Then re-run cell [0]."


def test_the_headline_is_short_module_paths_and_code_without_comments() -> None:
    from inplace_magic.diagnose.explain import explain

    diagnosis = _diagnosis({})
    diagnosis.saved_by = OpSite(
        op="aten.convolution.default",
        location=Location(line=3, code="s = self.shortcut(h)  # the skip", function="forward", cell=0),
        module="block.shortcut",
        module_type="Conv2d(4, 4, kernel_size=(1, 1), stride=(1, 1))",
        defined_at=Location(line=1, code="self.shortcut = nn.Conv2d(4, 4, 1)", function="__init__", cell=0),
    )
    explain(diagnosis)  # the engine's own headline is short: the module's class, no comment
    assert "(Conv2d) at" in diagnosis.headline and "Conv2d(" not in diagnosis.headline
    assert "#" not in diagnosis.headline and "#" not in diagnosis.explanation
    state = build_state(diagnosis.to_json())
    parts = state["headline_parts"]
    codes = [(p["text"], p.get("title")) for p in parts if p.get("code")]
    # the writer has no module of its own: its line, without the comment; the saver is its module path
    assert codes == [
        ("x += 1", "aten.add_.Tensor in block"),
        ("block.shortcut", "Conv2d(4, 4, kernel_size=(1, 1), stride=(1, 1))"),
    ]
    assert "#" not in state["headline"] and "Conv2d(" not in state["headline"]
    assert [p["cell"] for p in parts if "cell" in p] == [0, 0]
    assert "Conv2d(" not in render_text(diagnosis).split("\n")[2]  # the text report's headline too


def test_prose_refers_to_cells_it_names_and_keeps_code_as_code() -> None:
    from inplace_magic.diagnose.diagnosis import CELL_NAME
    from inplace_magic.present.segments import prose

    token = CELL_NAME.set("cell [{}]")
    try:
        parts = prose(
            "`h += r` at cell [2], line 3 and cell [20]; `cell [2]` stays code, cell [7] unknown",
            {2: "id2", 20: None},
        )
    finally:
        CELL_NAME.reset(token)
    assert parts == [
        {"text": "h += r", "code": True},
        {"text": " at "},
        {"text": "cell [2]", "cell": 2, "cell_id": "id2"},
        {"text": ", line 3 and "},
        {"text": "cell [20]", "cell": 20},
        {"text": "; "},
        {"text": "cell [2]", "code": True},
        {"text": " stays code, cell [7] unknown"},
    ]
    # by index, "cell 2" is not the start of "cell 20"
    assert [p.get("cell") for p in prose("cell 20 and cell 2", {2: None, 20: None})] == [20, None, 2]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x += r  # residual", "x += r"),
        ("s = '#not a comment'  # a comment", "s = '#not a comment'"),
        ("loss = f(x,  # the line of a longer call", "loss = f(x,"),
        ("plain", "plain"),
    ],
)
def test_code_is_shown_without_its_comment(code: str, expected: str) -> None:
    from inplace_magic.present.words import without_comment

    assert without_comment(code) == expected


@pytest.mark.parametrize(
    "name", ["skip_connection", "skip_shortcut", "optimizer_step", "leaf", "view", "branch_cat"]
)
def test_real_headlines_keep_the_engine_words_without_reprs(name: str) -> None:
    import json
    from pathlib import Path

    fixture = json.loads((Path(__file__).parent / "fixtures" / "widget" / f"{name}.json").read_text())
    diag = fixture["diagnosis"]
    state = build_state(diag, dict(enumerate(fixture["sources"])))
    shown = state["headline"]
    sites = [diag.get("inplace"), diag.get("saved_by"), *(diag.get("also_written_by") or [])]
    for site in (s for s in sites if s):
        if site.get("module_type") and site.get("defined_at"):
            assert f"({site['module_type']})" not in shown
            assert any(p.get("title") == site["module_type"] for p in state["headline_parts"])
    # nothing but the reprs and comments went: the engine's words are all there
    for word in ("overwrote", "writes", "updated", "saved", "detach"):
        assert (word in shown) == (word in diag["headline"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a`b", [("a`b", False)]),  # one backtick: a character (it raised IndexError)
        ("a `b` c`d", [("a ", False), ("b", True), (" c`d", False)]),  # the unpaired one stays where it was
        ("`x`", [("x", True)]),
    ],
)
def test_prose_keeps_an_unpaired_backtick_as_a_character_where_it_stands(
    value: str, expected: list[tuple[str, bool]]
) -> None:
    from inplace_magic.present.segments import prose

    assert [(s["text"], bool(s.get("code"))) for s in prose(value, {})] == expected
