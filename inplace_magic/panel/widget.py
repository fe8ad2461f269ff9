"""The diagnosis panel: an anywidget whose synced state is :class:`~.panel_protocol.PanelState`.

The front end (``src/panel/``, bundled into ``static/widget.js``) draws the headline, the graph, the
version timeline and the fixes. Its Apply button first offers the fix to the JupyterLab extension
through a DOM event; when nobody claims it, the front end sends an :class:`ApplyRequest` here and
:class:`~.panel_apply.KernelApplier` takes the kernel-side path. The outcome comes back in the
``outcome`` trait. Needs ``anywidget`` (``pip install anywidget``); importing the package does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import anywidget
    import traitlets
except ImportError as exc:  # pragma: no cover - anywidget is a dependency; keep the message useful
    raise ImportError("The diagnosis panel needs anywidget: pip install 'anywidget>=0.9'") from exc

from ..present.html import MIME_TYPE
from .apply import KernelApplier
from .html import render_html, render_plain
from .protocol import PROTOCOL_VERSION, Outcome, PanelState
from .state import Sources, build_state

STATIC = Path(__file__).parent.parent / "static"

# Shown when the package was installed without its built front end (a source checkout before
# `make setup`): the panel still says what happened, as text.
_UNBUILT_ESM = """
export default { render({ model, el }) {
  const p = document.createElement("p");
  p.textContent = (model.get("state").headline || "In-place autograd error") +
    " (the diagnosis panel's front end is not built: run `make setup`)";
  el.appendChild(p);
} };
"""


def _static(name: str, fallback: str) -> str:
    path = STATIC / name
    return path.read_text(encoding="utf-8") if path.is_file() else fallback


def bundle_built() -> bool:
    """Whether the front-end bundle is installed (it is in every wheel; a checkout needs `make setup`)."""
    return (STATIC / "widget.js").is_file()


class DiagnosisPanel(anywidget.AnyWidget):  # type: ignore[misc]
    """The panel for one diagnosis. Build it with :meth:`from_diagnosis`."""

    _esm = _static("widget.js", _UNBUILT_ESM)
    _css = _static("widget.css", "")

    state = traitlets.Dict().tag(sync=True)
    outcome = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(
        self,
        state: PanelState,
        *,
        base_dir: Path | None = None,
        diagnosis: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(state=dict(state), **kwargs)
        self._diagnosis = dict(diagnosis) if diagnosis is not None else None
        where = state["error"]["where"] or {}
        self._applier = KernelApplier(base_dir, where.get("cell"))
        self.on_msg(self._on_message)

    @classmethod
    def from_diagnosis(
        cls, diag: Mapping[str, Any], sources: Sources | None = None, **kwargs: Any
    ) -> DiagnosisPanel:
        """The panel for ``diag`` (``Diagnosis.to_json()``); ``sources`` (cell index -> current text)
        gives the fix diffs their context lines."""
        return cls(build_state(diag, sources), diagnosis=diag, **kwargs)

    @property
    def panel_state(self) -> PanelState:
        return self.state  # type: ignore[return-value]

    def _on_message(self, _widget: object, content: Any, _buffers: object) -> None:
        if not isinstance(content, dict) or content.get("type") not in ("apply", "undo"):
            return
        self.outcome = {**self._answer(content), "requestId": str(content.get("requestId", ""))}

    def _answer(self, content: dict[str, Any]) -> dict[str, Any]:
        index = content.get("fixIndex")
        fixes = self.panel_state["fixes"]
        if content.get("protocol") != PROTOCOL_VERSION:
            return _refusal(
                content,
                f"The panel speaks protocol {content.get('protocol')} and the kernel's inplace_magic "
                f"speaks {PROTOCOL_VERSION}: restart the kernel after upgrading inplace_magic, "
                "then re-run the cell.",
            )
        if content.get("diagnosisId") != self.panel_state["id"]:
            return _refusal(content, "This fix belongs to another diagnosis; re-run the cell.")
        if not isinstance(index, int) or not 0 <= index < len(fixes):
            return _refusal(content, "This panel has no such fix.")
        if content["type"] == "apply":
            return dict(self._applier.apply(fixes[index]))
        return dict(self._applier.undo(fixes[index]))

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data["text/plain"] = render_plain(self.panel_state)
        data["text/html"] = render_html(self.panel_state)
        if self._diagnosis is not None:
            # the diagnosis itself, as every face publishes it (the sidebar and UI tests read it)
            data[MIME_TYPE] = json.loads(json.dumps(self._diagnosis, default=str))
            metadata = {**metadata, MIME_TYPE: {"version": 1}}
        return data, metadata


def _refusal(content: Mapping[str, Any], message: str) -> dict[str, Any]:
    index = content.get("fixIndex")
    outcome: Outcome = {
        "type": "undo" if content.get("type") == "undo" else "apply",
        "fixIndex": index if isinstance(index, int) else -1,
        "path": "none",
        "applied": False,
        "message": message,
        "copy": [],
    }
    return dict(outcome)


def display_diagnosis(diag: Mapping[str, Any], sources: Sources | None = None) -> DiagnosisPanel:
    """Show the panel for ``diag`` in the current output and return it."""
    from IPython.display import display

    panel = DiagnosisPanel.from_diagnosis(diag, sources)
    display(panel)
    return panel
