"""Show a diagnosis in a notebook or terminal: the one seam every kernel-side face goes through.

``display_diagnosis`` publishes a text/plain report (terminal IPython, nbconvert, classic front
ends), a text/html one (JupyterLab, Notebook) and the diagnosis itself as JSON under
:data:`~inplace_magic.present.html.MIME_TYPE` (the CLI's JSON: front-end code and tests read it from
the cell's outputs). In a kernel the widget panel is shown, and the JupyterLab sidebar told. It
returns a :class:`Shown`, through which the kernel updates what it shows (a fix's verification).

In a kernel, cells are named by their In[] prompt, as the notebook shows them ("cell [4]"):
:func:`prompt_cell_names` sets that while the kernel diagnoses and reports.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..diagnose.contract import DiagnosisJSON
from ..diagnose.diagnosis import CELL_NAME, Diagnosis
from ..panel.issued import ISSUED, Issued
from ..present.html import MIME_TYPE, render_html
from ..present.text import render_text
from ..present.words import PROMPT_CELL_NAME

if TYPE_CHECKING:
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
    """A diagnosis on screen: its panel (in a kernel) and the sidebar's copy, one issued state."""

    def __init__(self, issued: Issued, panel: DiagnosisPanel | None, channel: LabChannel | None) -> None:
        self.issued = issued
        self.panel = panel
        self.channel = channel

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
        return True


_last: list[Shown] = []


def last_shown() -> Shown | None:
    """The diagnosis this kernel showed last (what ``update_fix`` of its verification reaches)."""
    return _last[-1] if _last else None


def display_diagnosis(
    diagnosis: Diagnosis, sources: Mapping[int, str] | None = None, channel: LabChannel | None = None
) -> Shown:
    """Publish ``diagnosis`` to the front end. In a kernel, the widget panel shows it (this report is
    its text and HTML fallback) and ``channel`` tells the JupyterLab sidebar; ``sources`` (In[] number
    -> cell text as it ran) lets both check that a fix still matches the cell. The diagnosis is issued
    once: the panel and the sidebar carry the same state, and the kernel applies only its fixes."""
    from IPython.display import publish_display_data

    report = json.loads(json.dumps(diagnosis.to_json(), default=str))
    data: dict[str, Any] = {"text/plain": render_text(diagnosis), "text/html": render_html(diagnosis)}
    panel = _kernel_panel(report, sources)
    if panel is not None:
        issued = panel.issued
    else:
        from ..panel.state import build_state

        issued = ISSUED.issue(build_state(report, sources), report)
    if channel is not None:
        channel.publish(issued.state)
    if panel is not None:
        # the widget's view; the text and HTML above are its fallback where widgets do not render
        view = panel._repr_mimebundle_()
        data = {**(view[0] if view else {}), **data}
    publish_display_data({**data, MIME_TYPE: report}, metadata={MIME_TYPE: {"version": 1}})
    shown = Shown(issued, panel, channel)
    _last[:] = [shown]
    return shown


def _kernel_panel(report: DiagnosisJSON, sources: Mapping[int, str] | None) -> DiagnosisPanel | None:
    """The widget panel, in a kernel with the widget installed (a terminal shows the text report)."""
    from IPython import get_ipython

    if getattr(get_ipython(), "kernel", None) is None:
        return None
    try:
        from ..panel.widget import DiagnosisPanel
    except ImportError:
        return None
    return DiagnosisPanel.from_diagnosis(report, sources)
