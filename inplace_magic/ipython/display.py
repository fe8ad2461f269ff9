"""Show a diagnosis in a notebook or terminal: the one seam every kernel-side face goes through.

``display_diagnosis`` publishes a text/plain report (terminal IPython, nbconvert, classic front
ends), a text/html one (JupyterLab, Notebook) and the diagnosis itself as JSON under
:data:`~inplace_magic.present.html.MIME_TYPE` (the CLI's JSON: front-end code and tests read it from
the cell's outputs). In a kernel the widget panel is shown, and the JupyterLab sidebar told. It
returns a :class:`Shown`, through which the kernel updates what it shows (a fix's verification): the
panel, the sidebar, and in a kernel the text, HTML and JSON too (one display, updated in place).

In a kernel, cells are named by their In[] prompt, as the notebook shows them ("cell [4]"):
:func:`prompt_cell_names` sets that while the kernel diagnoses and reports.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..diagnose.diagnosis import CELL_NAME, Diagnosis
from ..panel.issued import ISSUED, Issued
from ..present.html import MIME_TYPE, render_html
from ..present.text import render_text
from ..present.words import PROMPT_CELL_NAME

if TYPE_CHECKING:
    from ..diagnose.contract import DiagnosisJSON
    from ..lab.comm import LabChannel
    from ..panel.protocol import PanelState
    from ..panel.state import FixVerdict
    from ..panel.widget import DiagnosisPanel


@contextlib.contextmanager
def prompt_cell_names() -> Iterator[None]:
    """Name cells "cell [4]" (their In[] prompt) in every label made inside, as a kernel should."""
    token = CELL_NAME.set(PROMPT_CELL_NAME)
    try:
        yield
    finally:
        CELL_NAME.reset(token)


class Shown:
    """A diagnosis on screen: its panel (in a kernel) and the sidebar's copy, one issued state, and
    its text, HTML and JSON (``fallback``; updated in place when it was published with a display id)."""

    def __init__(
        self,
        issued: Issued,
        panel: DiagnosisPanel | None,
        channel: LabChannel | None,
        fallback: _Fallback | None = None,
    ) -> None:
        self.issued = issued
        self.panel = panel
        self.channel = channel
        self.fallback = fallback

    @property
    def state(self) -> PanelState:
        return self.issued.state

    def update_fix(self, index: int, verdict: FixVerdict) -> bool:
        """What the kernel found out about fix ``index`` (``verdict["status"]``: "verifying", "verified",
        "changes_semantics", "did_not_help", "not_verified"): the panel redraws it, the sidebar gets the
        new state, and Apply follows it. False when the diagnosis has no such fix."""
        from ..panel.state import with_verdict

        fix = self.issued.fix(index)
        if fix is None:
            return False
        if self.panel is not None:
            self.panel.update_fix(index, verdict)
        else:
            self.issued.state["fixes"][index] = with_verdict(fix, verdict)
        if self.channel is not None:
            self.channel.publish(self.issued.state)
        if self.fallback is not None:
            # a republished display re-renders the panel (its open tab lost): with a panel, the text
            # and HTML wait for refresh(), once its fixes are verified
            self.fallback.update_fix(index, verdict, publish=self.panel is None)
        return True

    def refresh(self) -> None:
        """Republish the text, HTML and JSON with what ``update_fix`` said since (in a kernel)."""
        if self.fallback is not None:
            self.fallback.publish(update=True)


class _Fallback:
    """The text, HTML and JSON of a shown diagnosis, republished under its display id when a fix's
    verification changes (where widgets do not render, this is what the user reads)."""

    def __init__(
        self, diagnosis: Diagnosis, statuses: dict[int, str], view: Mapping[str, Any], display_id: str | None
    ) -> None:
        self.diagnosis = copy.copy(diagnosis)
        self.diagnosis.fixes = [dict(fix) for fix in diagnosis.fixes]
        self.statuses = statuses  # fix index -> verification status, where it is not the fix's own
        self.view = dict(view)  # the widget's view, kept in every update of the display
        self.display_id = display_id
        # the cell names in force when it was first shown ("cell [4]" in a kernel): the update after
        # verification is rendered later, outside the face's prompt_cell_names()
        self.cell_name = CELL_NAME.get()

    def bundle(self, report: dict[str, Any] | None = None, headline: str | None = None) -> dict[str, Any]:
        """The MIME bundle; ``report`` is the diagnosis's JSON and ``headline`` its headline as a line
        of text, where the caller made them already (each ``to_json`` walks the whole diagnosis, and
        so does finding the cells a headline names: the text and the HTML share one of each)."""
        if report is None:
            report = json.loads(json.dumps(self.diagnosis.to_json(), default=str))
        shown = copy.copy(self.diagnosis)  # the words say "verifying…" while it runs
        shown.fixes = [
            {**fix, "verification": self.statuses[i]} if i in self.statuses else fix
            for i, fix in enumerate(self.diagnosis.fixes)
        ]
        # nothing is being verified: the words are the report's, and a third walk of the diagnosis
        # (a tenth of what showing it costs on a small model) is not needed
        words = cast("DiagnosisJSON", report) if not self.statuses else shown.to_json()
        token = CELL_NAME.set(self.cell_name)
        try:
            # the headline reads no fix (their verification is all that changes): the report's serves
            text = {
                "text/plain": render_text(shown, words, headline),
                "text/html": render_html(shown, words, headline),
            }
        finally:
            CELL_NAME.reset(token)
        return {**self.view, **text, MIME_TYPE: report}

    def publish(
        self, update: bool = False, report: dict[str, Any] | None = None, headline: str | None = None
    ) -> None:
        from IPython.display import publish_display_data

        if update and self.display_id is None:
            return  # printed once (a terminal)
        transient = {"display_id": self.display_id} if self.display_id else None
        publish_display_data(
            self.bundle(report, headline),
            metadata={MIME_TYPE: {"version": 1}},
            transient=transient,
            update=update,
        )

    def update_fix(self, index: int, verdict: FixVerdict, publish: bool) -> None:
        if self.display_id is None or index >= len(self.diagnosis.fixes):
            return  # printed once (a terminal): nothing to update in place
        fix = self.diagnosis.fixes[index]
        for key in ("verified", "preserves_gradients", "notes"):
            if key in verdict:
                fix[key] = verdict[key]  # type: ignore[literal-required]
        self.statuses[index] = verdict["status"]
        if publish:
            self.publish(update=True)


_last: list[Shown] = []


def last_shown() -> Shown | None:
    """The diagnosis this kernel showed last (what ``update_fix`` of its verification reaches)."""
    return _last[-1] if _last else None


def display_diagnosis(
    diagnosis: Diagnosis,
    sources: Mapping[int, str] | None = None,
    channel: LabChannel | None = None,
    verifying: Collection[int] = (),
) -> Shown:
    """Publish ``diagnosis`` to the front end. In a kernel, the widget panel shows it (this report is
    its text and HTML fallback) and ``channel`` tells the JupyterLab sidebar; ``sources`` (In[] number
    -> cell text as it ran) lets both check that a fix still matches the cell. The diagnosis is issued
    once: the panel and the sidebar carry the same state, and the kernel applies only its fixes. The
    fixes in ``verifying`` are shown as being verified, until :meth:`Shown.update_fix` says more."""
    from ..panel.state import build_state, with_verdict

    report = json.loads(json.dumps(diagnosis.to_json(), default=str))
    state = build_state(report, sources)
    # the fixes being verified say so from the first state the page and the sidebar get
    pending = sorted(i for i in verifying if 0 <= i < len(state["fixes"]))
    for index in pending:
        state["fixes"][index] = with_verdict(state["fixes"][index], {"status": "verifying"})
    issued = ISSUED.issue(state, report, handed_over=True)  # ``state`` is not used below but through it
    panel = _kernel_panel(issued)
    if channel is not None:
        channel.publish(issued.state)
    view: dict[str, Any] = {}
    if panel is not None:
        # the widget's view; the text and HTML are its fallback where widgets do not render
        bundle = panel._repr_mimebundle_()
        view = dict(bundle[0]) if bundle else {}
    in_kernel = _in_kernel()
    display_id = f"inplace-magic-diagnosis-{uuid.uuid4().hex}" if in_kernel else None
    fallback = _Fallback(diagnosis, {i: "verifying" for i in pending}, view, display_id)
    # nothing changed since they were made: the same JSON, and the panel's headline, in the same cell
    # names (the fallback renders in those it was made in)
    fallback.publish(report=report, headline=issued.state["headline"])
    shown = Shown(issued, panel, channel, fallback)
    _last[:] = [shown]
    return shown


def _in_kernel() -> bool:
    """Whether a front end shows this shell's displays (and updates them in place)."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def _kernel_panel(issued: Issued) -> DiagnosisPanel | None:
    """The widget panel, in a kernel with the widget installed (a terminal shows the text report)."""
    if not _in_kernel():
        return None
    try:
        from ..panel.widget import DiagnosisPanel
    except ImportError:
        return None
    return DiagnosisPanel(issued)
