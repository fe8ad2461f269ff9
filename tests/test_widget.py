"""The anywidget: synced traits over a recording comm, the kernel-side Apply path, the HTML
fallback, and that the built front end ships in the package (and the wheel)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import pytest

import inplace_magic
from inplace_magic.panel.apply import BACKUP_SUFFIX
from inplace_magic.panel.protocol import PROTOCOL_VERSION
from inplace_magic.panel.state import build_state
from inplace_magic.panel.widget import STATIC, DiagnosisPanel, bundle_built

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "widget"


class RecordingComm:
    """Stands in for the kernel's comm: records what the widget sends to the front end."""

    comm_id = "recording"
    kernel = "truthy"

    def __init__(self, **kwargs: Any) -> None:
        self.opened = kwargs
        self.messages: list[dict[str, Any]] = []

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append(data)

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def updates(self, key: str) -> list[Any]:
        return [m["state"][key] for m in self.messages if m.get("method") == "update" and key in m["state"]]


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield made


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _panel(name: str, **kwargs: Any) -> DiagnosisPanel:
    fixture = _fixture(name)
    return DiagnosisPanel.from_diagnosis(fixture["diagnosis"], dict(enumerate(fixture["sources"])), **kwargs)


def _message(panel: DiagnosisPanel, content: dict[str, Any]) -> None:
    """What the front end's ``model.send(content)`` delivers to the kernel."""
    panel._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def _apply(panel: DiagnosisPanel, index: int, kind: str = "apply", **overrides: Any) -> None:
    request = {
        "type": kind,
        "protocol": PROTOCOL_VERSION,
        "diagnosisId": panel.state["id"],
        "fixIndex": index,
        "requestId": f"r{len(panel.comm.messages)}",
    }
    _message(panel, {**request, **overrides})


def test_the_state_is_synced_on_open(comms: list[RecordingComm]) -> None:
    panel = _panel("skip_connection")
    fixture = _fixture("skip_connection")
    assert panel.state == json.loads(
        json.dumps(build_state(fixture["diagnosis"], dict(enumerate(fixture["sources"]))))
    )
    assert panel.comm in comms
    synced = panel.comm.opened["data"]["state"]
    assert synced["state"]["id"] == panel.state["id"]
    assert synced["outcome"] is None
    assert synced["_esm"]


def test_a_cell_fix_without_the_extension_is_offered_to_copy(comms: list[RecordingComm]) -> None:
    panel = _panel("skip_connection")
    _apply(panel, 0)
    [outcome] = panel.comm.updates("outcome")
    assert outcome["path"] == "copy" and outcome["applied"] is False
    assert outcome["copy"] == [{"label": "cell 0", "text": panel.state["fixes"][0]["cells"]["0"]}]
    assert "re-run cells 0–2" in outcome["message"]
    _apply(panel, 0)  # the same request again still answers: the request id differs
    assert [o["requestId"] for o in panel.comm.updates("outcome")] == ["r0", "r1"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"protocol": PROTOCOL_VERSION + 1}, "restart the kernel"),
        ({"diagnosisId": "d-other"}, "another diagnosis"),
        ({"fixIndex": 99}, "no such fix"),
    ],
    ids=["protocol", "diagnosis", "index"],
)
def test_requests_the_kernel_did_not_issue_are_refused(
    comms: list[RecordingComm], override: dict[str, Any], expected: str
) -> None:
    panel = _panel("leaf")
    _apply(panel, 0, **override)
    assert panel.outcome is not None
    assert panel.outcome["applied"] is False and panel.outcome["path"] == "none"
    assert expected in panel.outcome["message"]


def test_the_front_end_cannot_send_code(comms: list[RecordingComm]) -> None:
    panel = _panel("leaf")
    _apply(
        panel,
        0,
        cells={"2": "import os; os.system('boom')"},
        edits=[{"cell": 2, "line": 1, "old": "", "new": "x"}],
    )
    assert panel.outcome is not None
    assert panel.outcome["copy"][0]["text"] == panel.state["fixes"][0]["cells"]["2"]


def _file_diagnosis(path: Path) -> dict[str, Any]:
    diag = _fixture("skip_connection")["diagnosis"]
    diag["fixes"] = [
        {
            "kind": "augmented_assign",
            "title": "Write `x = x + residual`",
            "verified": True,
            "edits": [
                {"file": str(path), "line": 3, "old": "    x += residual", "new": "    x = x + residual"}
            ],
            "cells": {},
        }
    ]
    return diag


SCRIPT = "def block(x, residual):\n    x = x.relu_()\n    x += residual\n    return x\n"


def test_a_file_fix_is_written_with_a_backup_and_undone(comms: list[RecordingComm], tmp_path: Path) -> None:
    script = tmp_path / "model.py"
    script.write_text(SCRIPT)
    panel = DiagnosisPanel.from_diagnosis(_file_diagnosis(script))
    _apply(panel, 0)
    assert panel.outcome is not None and panel.outcome["applied"], panel.outcome
    assert panel.outcome["path"] == "kernel-file"
    assert script.read_text() == SCRIPT.replace("x += residual", "x = x + residual")
    assert (tmp_path / f"model.py{BACKUP_SUFFIX}").read_text() == SCRIPT
    _apply(panel, 0, "undo")
    assert panel.outcome["applied"] and panel.outcome["type"] == "undo"
    assert script.read_text() == SCRIPT
    assert [o["type"] for o in panel.comm.updates("outcome")] == ["apply", "undo"]


def test_a_file_edited_since_the_diagnosis_is_not_touched(comms: list[RecordingComm], tmp_path: Path) -> None:
    script = tmp_path / "model.py"
    edited = SCRIPT.replace("x += residual", "x += 2 * residual")
    script.write_text(edited)
    panel = DiagnosisPanel.from_diagnosis(_file_diagnosis(script))
    _apply(panel, 0)
    assert panel.outcome is not None and not panel.outcome["applied"]
    assert "changed since the diagnosis" in panel.outcome["message"]
    assert script.read_text() == edited
    assert not (tmp_path / f"model.py{BACKUP_SUFFIX}").exists()


def test_undo_refuses_when_the_file_changed_after_apply(comms: list[RecordingComm], tmp_path: Path) -> None:
    script = tmp_path / "model.py"
    script.write_text(SCRIPT)
    panel = DiagnosisPanel.from_diagnosis(_file_diagnosis(script))
    _apply(panel, 0)
    script.write_text(script.read_text() + "# my edit\n")
    _apply(panel, 0, "undo")
    assert panel.outcome is not None and not panel.outcome["applied"]
    assert script.read_text().endswith("# my edit\n")


def test_the_fallback_bundle_has_the_same_content_as_escaped_html(comms: list[RecordingComm]) -> None:
    diag = _fixture("leaf")["diagnosis"]
    diag["headline"] = "<script>alert(1)</script> overwrote a leaf"
    panel = DiagnosisPanel.from_diagnosis(diag)
    data, _ = panel._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    html = data["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; overwrote a leaf" in html
    assert "s_batch -= s_learning_rate * s_batch.grad" in html
    for step in panel.state["timeline"]:
        assert step["text"].replace("`", "&#x27;") in html.replace("`", "&#x27;")
    assert "Do the update under" in data["text/plain"]
    assert data["application/vnd.inplace-magic.diagnosis+json"]["headline"] == diag["headline"]


def test_the_built_front_end_ships_in_the_package() -> None:
    assert bundle_built(), "run `make setup` (npm run build) to bundle src/panel"
    bundle = (STATIC / "widget.js").read_text()
    assert "inplace-magic:apply" in bundle
    assert "http://" not in bundle.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in bundle
    assert DiagnosisPanel._esm == bundle
    assert (STATIC / "widget.css").is_file()


def test_importing_the_package_needs_neither_node_nor_the_widget() -> None:
    code = (
        "import sys, inplace_magic; "
        "print('anywidget' in sys.modules, 'inplace_magic.panel.widget' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={})
    assert out.stdout.split() == ["False", "False"]


def test_the_npm_and_python_versions_agree() -> None:
    assert json.loads((ROOT / "package.json").read_text())["version"] == inplace_magic.__version__


def test_the_lockfile_names_no_registry_host() -> None:
    lock = (ROOT / "package-lock.json").read_text()
    assert '"resolved"' not in lock
