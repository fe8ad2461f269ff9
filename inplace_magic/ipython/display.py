"""Show a diagnosis in a notebook or terminal: the one seam every kernel-side face goes through.

``display_diagnosis`` publishes a text/plain report (terminal IPython, nbconvert, classic front
ends), a text/html one (JupyterLab, Notebook) and the diagnosis itself as JSON under
:data:`~inplace_magic.present.html.MIME_TYPE` (the CLI's JSON: front-end code and tests read it from
the cell's outputs). In a kernel the widget panel is shown, and the JupyterLab sidebar told.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..diagnose.contract import DiagnosisJSON
from ..diagnose.diagnosis import Diagnosis
from ..present.html import MIME_TYPE, render_html
from ..present.text import render_text

if TYPE_CHECKING:
    from ..lab.comm import LabChannel
    from ..panel.widget import DiagnosisPanel


def display_diagnosis(
    diagnosis: Diagnosis, sources: Mapping[int, str] | None = None, channel: LabChannel | None = None
) -> None:
    """Publish ``diagnosis`` to the front end. In a kernel, the widget panel shows it (this report is
    its text and HTML fallback) and ``channel`` tells the JupyterLab sidebar; ``sources`` (In[] number
    -> cell text as it ran) lets both check that a fix still matches the cell. The diagnosis is issued
    once: the panel and the sidebar carry the same state, and the kernel applies only its fixes."""
    from IPython.display import publish_display_data

    report = json.loads(json.dumps(diagnosis.to_json(), default=str))
    data: dict[str, Any] = {"text/plain": render_text(diagnosis), "text/html": render_html(diagnosis)}
    panel = _kernel_panel(report, sources)
    if channel is not None:
        if panel is not None:
            channel.publish(panel.panel_state)
        else:
            from ..panel.issued import ISSUED
            from ..panel.state import build_state

            channel.publish(ISSUED.issue(build_state(report, sources), report).state)
    if panel is not None:
        # the widget's view; the text and HTML above are its fallback where widgets do not render
        view = panel._repr_mimebundle_()
        data = {**(view[0] if view else {}), **data}
    publish_display_data({**data, MIME_TYPE: report}, metadata={MIME_TYPE: {"version": 1}})


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
