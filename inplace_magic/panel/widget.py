"""The diagnosis panel: an anywidget whose synced traits are :class:`~.protocol.PanelModel`.

The front end (``src/panel/``, bundled into ``static/widget.js``) draws the headline, the graph, the
version timeline and the fixes. Its Apply button first offers the fix to the JupyterLab extension
through a DOM event; when nobody claims it, the front end sends an :class:`~.protocol.ApplyRequest`
here and :class:`~.apply.KernelApplier` takes the kernel-side path. The outcome comes back in the
``outcome`` trait.

Only the kernel writes the traits: a change from the page is answered, then undone. A request names a
fix by index, is checked field by field against the protocol, and gets the fix this kernel issued
(:mod:`.issued`), never what the page's copy of the state says. Needs ``anywidget``
(``pip install anywidget``); importing the package does not.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import anywidget
    import traitlets
except ImportError as exc:  # pragma: no cover - anywidget is a dependency; keep the message useful
    raise ImportError("The diagnosis panel needs anywidget: pip install 'anywidget>=0.9'") from exc

from .._version import __version__
from ..diagnose.contract import DiagnosisJSON
from ..present.words import panel_request_mismatch
from .apply import KernelApplier, outcome
from .issued import ISSUED, Issued, IssuedDiagnoses
from .protocol import PROTOCOL_VERSION, ApplyRequest, Outcome, PanelModel, PanelState
from .state import FixVerdict, Sources, build_state, with_verdict
from .wire import problem

STATIC = Path(__file__).parent.parent / "static"

# the synced traits of the protocol: the kernel's alone
KERNEL_TRAITS = frozenset(PanelModel.__annotations__)

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
    """The panel for one issued diagnosis. Build it with :meth:`from_diagnosis`."""

    _esm = _static("widget.js", _UNBUILT_ESM)
    _css = _static("widget.css", "")

    state = traitlets.Dict().tag(sync=True)
    outcome = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(self, issued: Issued, **kwargs: Any) -> None:
        # the page gets a copy: the kernel decides from ``issued`` alone
        super().__init__(state=copy.deepcopy(issued.state), **kwargs)
        self.issued = issued
        self._applier = KernelApplier(issued)
        self.on_msg(self._on_message)

    @classmethod
    def from_diagnosis(
        cls,
        diag: DiagnosisJSON | Mapping[str, Any],
        sources: Sources | None = None,
        *,
        registry: IssuedDiagnoses = ISSUED,
        base_dir: Path | None = None,
        **kwargs: Any,
    ) -> DiagnosisPanel:
        """Issue ``diag`` (``Diagnosis.to_json()``) and make its panel; ``sources`` (cell index ->
        current text) gives the fix diffs their context lines and the stale-edit check."""
        state = build_state(diag, sources)  # type: ignore[arg-type]  # a partial diagnosis is drawn too
        return cls(registry.issue(state, diag, base_dir), **kwargs)

    def update_fix(self, index: int, verdict: FixVerdict) -> PanelState | None:
        """Show what the kernel found out about fix ``index`` (``verdict["status"]``: "verifying",
        "verified", "changes_semantics", "did_not_help", "not_verified"): the page redraws that fix,
        and Apply follows it. The kernel's own copy changes too (the registry holds the same one), so
        a later sync and Apply see it. Returns the new state, or None when there is no such fix."""
        fix = self.issued.fix(index)
        if fix is None:
            return None
        self.issued.state["fixes"][index] = with_verdict(fix, verdict)
        self.state = dict(copy.deepcopy(self.issued.state))
        return copy.deepcopy(self.issued.state)

    @property
    def panel_state(self) -> PanelState:
        """The state as the kernel issued it (the ``state`` trait is the page's copy)."""
        return self.issued.state

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """A trait change from the page: the protocol's traits are refused, the rest is ipywidgets'."""
        refused = sorted(name for name in sync_data if name in KERNEL_TRAITS)
        rest = {name: value for name, value in sync_data.items() if name not in KERNEL_TRAITS}
        if rest:
            super().set_state(rest)
        if refused:
            self.send_state(refused)  # every view of the page shows the kernel's values again
            self.outcome = dict(
                outcome(
                    "update",
                    -1,
                    "none",
                    False,
                    f"The page tried to change the panel's {' and '.join(refused)}: only the kernel writes "
                    "them, so the change was ignored. Apply takes only the fixes the kernel issued.",
                )
            )

    def _on_message(self, _widget: object, content: object, _buffers: object) -> None:
        answer = self._answer(content)
        request_id = content.get("requestId") if isinstance(content, dict) else None
        answer["requestId"] = request_id if isinstance(request_id, str) else ""
        self.outcome = dict(answer)

    def _answer(self, content: object) -> Outcome:
        if not isinstance(content, dict):
            return _refusal(content, "The panel sent a message that is not an object; nothing was changed.")
        theirs = content.get("protocol")
        if type(theirs) is not int or theirs != PROTOCOL_VERSION:
            return _refusal(content, panel_request_mismatch(theirs, __version__, PROTOCOL_VERSION))
        wrong = problem(ApplyRequest, content)
        if wrong is not None:
            return _refusal(content, f"Refused: {wrong}. Nothing was changed.")
        request: ApplyRequest = content  # type: ignore[assignment]  # checked just above
        if request["diagnosisId"] != self.issued.state["id"]:
            return _refusal(content, "This fix belongs to another diagnosis; re-run the cell.")
        fix = self.issued.fix(request["fixIndex"])
        if fix is None:
            return _refusal(content, f"This diagnosis has no fix {request['fixIndex']}; nothing was changed.")
        if request["type"] == "apply":
            if not fix["can_apply"]:
                return _refusal(content, f"Not applied. {fix['verification']['detail']}".strip())
            return self._applier.apply(fix)
        return self._applier.undo(fix)


def _refusal(content: object, message: str) -> Outcome:
    fields: Mapping[str, Any] = content if isinstance(content, dict) else {}
    index = fields.get("fixIndex")
    return outcome(
        "undo" if fields.get("type") == "undo" else "apply",
        index if type(index) is int else -1,
        "none",
        False,
        message,
    )
