"""A fix's verification while its panel is shown: the state says where it stands (verifying, then a
verdict) in the kernel's words, the kernel updates the page's copy and the sidebar's, and Apply follows
what the kernel says. The browser side is ui-tests/tests/verification.spec.ts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_widget import RecordingComm, _apply, _fixture, _panel, comms  # noqa: F401

from inplace_magic.ipython.display import Shown
from inplace_magic.panel.issued import ISSUED
from inplace_magic.panel.protocol import PanelState
from inplace_magic.panel.state import build_state, with_verdict
from inplace_magic.present.words import LABEL_WORDS, VERIFICATION_STATUSES


@pytest.fixture
def panel(comms: list[RecordingComm]) -> Iterator[Any]:  # noqa: F811
    yield _panel("skip_connection")


def test_every_fix_says_how_far_its_verification_got() -> None:
    fixture = _fixture("optimizer_step")
    state = build_state(fixture["diagnosis"], dict(enumerate(fixture["sources"])))
    best = state["fixes"][0]
    assert best["verification"] == {
        "status": "changes_semantics",
        "label": "verified, changes the training semantics",
        "detail": "",
    }
    assert best["can_apply"] is True
    unverified = build_state(
        {**fixture["diagnosis"], "fixes": [{**fixture["diagnosis"]["fixes"][0], "verified": False}]}
    )
    assert unverified["fixes"][0]["verification"]["status"] == "not_verified"
    assert unverified["fixes"][0]["verification"]["label"] == "not verified, changes the training semantics"


@pytest.mark.parametrize("status", VERIFICATION_STATUSES)
def test_each_status_has_its_words_and_says_whether_apply_is_offered(status: str) -> None:
    fix = _panel_free_fix()
    updated = with_verdict(fix, {"status": status})  # type: ignore[typeddict-item]
    assert updated["verification"]["status"] == status
    assert updated["verification"]["label"] == ", ".join(label["text"] for label in updated["labels"])
    assert all(label["text"] == LABEL_WORDS[label["tag"]] for label in updated["labels"])
    offered = status not in ("verifying", "did_not_help")
    assert updated["can_apply"] is offered
    assert bool(updated["verification"]["detail"]) is not offered  # says why Apply waits
    if status == "verified":
        assert updated["verification"]["label"] == "verified, gradient-preserving"
    if status == "verifying":
        assert updated["verification"]["label"] == "verifying…"


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown verification status"):
        with_verdict(_panel_free_fix(), {"status": "probably"})  # type: ignore[typeddict-item]


def test_update_fix_redraws_the_page_and_apply_follows_the_kernel(panel: Any) -> None:
    state = panel.update_fix(0, {"status": "verifying"})
    assert state is not None
    [sent] = panel.comm.updates("state")
    assert sent["fixes"][0]["verification"]["label"] == "verifying…"
    assert sent["fixes"][0]["can_apply"] is False
    # the kernel's own copy changed too: an apply request is refused while it verifies
    _apply(panel, 0)
    [refused] = panel.comm.updates("outcome")
    assert refused["applied"] is False and "running this fix" in refused["message"]
    assert ISSUED.get(panel.state["id"]).state["fixes"][0]["verification"]["status"] == "verifying"  # type: ignore[union-attr]
    panel.update_fix(0, {"status": "verified", "detail": "Its gradients equal the reference."})
    verified = panel.comm.updates("state")[-1]["fixes"][0]
    assert verified["verification"] == {
        "status": "verified",
        "label": "verified, gradient-preserving",
        "detail": "Its gradients equal the reference.",
    }
    assert verified["can_apply"] is True and verified["verified"] is True
    _apply(panel, 0)
    assert panel.comm.updates("outcome")[-1]["path"] == "copy"  # offered again: the kernel path answers
    assert panel.update_fix(99, {"status": "verified"}) is None


class _Channel:
    def __init__(self) -> None:
        self.published: list[PanelState] = []

    def publish(self, state: PanelState) -> None:
        self.published.append(state)


def test_a_shown_diagnosis_updates_its_panel_and_the_sidebar(panel: Any) -> None:
    channel = _Channel()
    shown = Shown(panel.issued, panel, channel)  # type: ignore[arg-type]
    assert shown.update_fix(0, {"status": "did_not_help", "notes": ["The error remained."]})
    assert channel.published[-1]["fixes"][0]["verification"]["status"] == "did_not_help"
    assert channel.published[-1]["fixes"][0]["notes"] == ["The error remained."]
    assert panel.comm.updates("state")[-1]["fixes"][0]["can_apply"] is False
    # a sync after a page reload gives the updated state
    synced = {s["id"]: s for s in ISSUED.current()}
    assert synced[panel.state["id"]]["fixes"][0]["verification"]["status"] == "did_not_help"
    assert not shown.update_fix(99, {"status": "verified"})


def test_without_a_panel_the_kernel_copy_and_the_sidebar_still_update() -> None:
    fixture = _fixture("leaf")
    issued = ISSUED.issue(build_state(fixture["diagnosis"]), fixture["diagnosis"])
    channel = _Channel()
    shown = Shown(issued, None, channel)  # type: ignore[arg-type]
    assert shown.update_fix(0, {"status": "verifying"})
    assert issued.state["fixes"][0]["verification"]["status"] == "verifying"
    assert channel.published[-1]["fixes"][0]["can_apply"] is False


def _panel_free_fix() -> Any:
    fixture = _fixture("skip_connection")
    return build_state(fixture["diagnosis"], dict(enumerate(fixture["sources"])))["fixes"][0]


def test_the_verdicts_line_is_shown_once_not_again_among_the_notes() -> None:
    cost = "Verified in this kernel: twice re-executed for the fixes so far; kernel state restored."
    notes = ["Verified: the fixed cells ran without error.", cost]
    updated = with_verdict(_panel_free_fix(), {"status": "verified", "detail": cost, "notes": notes})
    assert updated["verification"]["detail"] == cost
    assert updated["notes"] == notes[:1]
