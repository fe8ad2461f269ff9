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
from inplace_magic.fix.files import BACKUP_SUFFIX
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
    assert "re-run cell 0 and cell 2" in outcome["message"]
    _apply(panel, 0)  # the same request again still answers: the request id differs
    assert [o["requestId"] for o in panel.comm.updates("outcome")] == ["r0", "r1"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"protocol": PROTOCOL_VERSION + 1}, "restart the kernel"),
        ({"diagnosisId": "d-other"}, "another diagnosis"),
        ({"fixIndex": 99}, "has no fix 99"),
        ({"fixIndex": -1}, "has no fix -1"),
    ],
    ids=["protocol", "diagnosis", "index", "negative-index"],
)
def test_requests_the_kernel_did_not_issue_are_refused(
    comms: list[RecordingComm], override: dict[str, Any], expected: str
) -> None:
    panel = _panel("leaf")
    _apply(panel, 0, **override)
    assert panel.outcome is not None
    assert panel.outcome["applied"] is False and panel.outcome["path"] == "none"
    assert expected in panel.outcome["message"]
    assert panel.outcome["copy"] == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"fixIndex": True}, "fixIndex must be an integer, not true"),
        ({"fixIndex": "0"}, 'fixIndex must be an integer, not "0"'),
        ({"fixIndex": 0.0}, "fixIndex must be an integer, not 0.0"),
        ({"fixIndex": None}, "fixIndex must be an integer, not null"),
        ({"protocol": True}, "The panel speaks protocol True"),
        ({"protocol": float(PROTOCOL_VERSION)}, f"The panel speaks protocol {float(PROTOCOL_VERSION)}"),
        ({"diagnosisId": 7}, "diagnosisId must be a string, not 7"),
        ({"requestId": ["r"]}, 'requestId must be a string, not ["r"]'),
        ({"type": "write"}, 'type must be "apply" or "undo", not "write"'),
        ({"cells": {"2": "import os"}}, "carries fields it never has: cells"),
        (
            {"edits": [{"file": "/etc/passwd", "line": 1, "old": "", "new": "x"}]},
            "fields it never has: edits",
        ),
    ],
    ids=[
        "index-bool",
        "index-str",
        "index-float",
        "index-null",
        "protocol-bool",
        "protocol-float",
        "id-int",
        "request-list",
        "type",
        "cells",
        "edits",
    ],
)
def test_every_field_of_a_request_is_type_checked(
    comms: list[RecordingComm], override: dict[str, Any], expected: str
) -> None:
    panel = _panel("leaf")
    _apply(panel, 0, **override)
    assert panel.outcome is not None
    assert panel.outcome["applied"] is False and panel.outcome["path"] == "none", panel.outcome
    assert expected in panel.outcome["message"]
    assert panel.outcome["copy"] == []  # not even the issued fix is handed out for a malformed request


def test_a_request_that_is_not_an_object_is_refused(comms: list[RecordingComm]) -> None:
    panel = _panel("leaf")
    _message(panel, ["apply", 0])  # type: ignore[arg-type]
    assert panel.outcome is not None and "not an object" in panel.outcome["message"]


def test_a_state_written_by_the_page_is_refused_and_apply_uses_the_issued_fix(
    comms: list[RecordingComm], tmp_path: Path
) -> None:
    panel = _panel("skip_connection")
    issued_text = panel.state["fixes"][0]["cells"]["0"]
    victim = tmp_path / "victim.py"
    forged = json.loads(json.dumps(panel.state))
    forged["fixes"][0]["cells"] = {"0": "import os; os.system('boom')"}
    forged["fixes"][0]["edits"] = [{"file": str(victim), "line": 1, "old": "", "new": "boom"}]
    panel._handle_msg({"content": {"data": {"method": "update", "state": {"state": forged}}}, "buffers": []})
    assert panel.state["fixes"][0]["cells"]["0"] == issued_text  # the kernel's value, synced back
    resent = [m for m in panel.comm.messages if m.get("method") == "update" and "state" in m["state"]]
    assert resent and resent[-1]["state"]["state"]["fixes"][0]["cells"]["0"] == issued_text
    assert panel.outcome is not None and panel.outcome["type"] == "update"
    assert "only the kernel writes them" in panel.outcome["message"]
    _apply(panel, 0)
    assert panel.outcome["copy"] == [{"label": "cell 0", "text": issued_text}]
    assert not victim.exists()


def _file_diagnosis(path: Path) -> dict[str, Any]:
    """The skip-connection diagnosis, with its writer in ``path`` and a fix of that file."""
    diag = _fixture("skip_connection")["diagnosis"]
    diag["inplace"] = {**diag["inplace"], "file": str(path), "line": 3, "code": "x += residual"}
    del diag["inplace"]["cell"]
    diag["fixes"] = [
        {
            "kind": "augmented_assign",
            "title": "Write `x = x + residual`",
            "description": "",
            "changes_semantics": False,
            "verified": True,
            "preserves_gradients": True,
            "edits": [
                {"file": str(path), "line": 3, "old": "    x += residual", "new": "    x = x + residual"}
            ],
            "cells": {},
            "notes": [],
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
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # swapped in, not left
    _apply(panel, 0, "undo")
    assert panel.outcome["applied"] and panel.outcome["type"] == "undo"
    assert script.read_text() == SCRIPT
    assert [o["type"] for o in panel.comm.updates("outcome")] == ["apply", "undo"]


def test_a_relative_file_name_is_resolved_against_the_kernel_folder(
    comms: list[RecordingComm], tmp_path: Path
) -> None:
    (tmp_path / "model.py").write_text(SCRIPT)
    diag = json.loads(json.dumps(_file_diagnosis(Path("model.py"))))
    panel = DiagnosisPanel.from_diagnosis(diag, base_dir=tmp_path)
    _apply(panel, 0)
    assert panel.outcome is not None and panel.outcome["applied"], panel.outcome
    assert "x = x + residual" in (tmp_path / "model.py").read_text()


def test_a_crlf_file_keeps_its_line_endings(comms: list[RecordingComm], tmp_path: Path) -> None:
    script = tmp_path / "model.py"
    script.write_bytes(SCRIPT.replace("\n", "\r\n").encode())
    panel = DiagnosisPanel.from_diagnosis(_file_diagnosis(script))
    _apply(panel, 0)
    assert panel.outcome is not None and panel.outcome["applied"], panel.outcome
    assert (
        script.read_bytes()
        == SCRIPT.replace("x += residual", "x = x + residual").replace("\n", "\r\n").encode()
    )


def test_a_file_the_diagnosis_did_not_locate_is_never_written(
    comms: list[RecordingComm], tmp_path: Path
) -> None:
    located, other = tmp_path / "model.py", tmp_path / "other.py"
    located.write_text(SCRIPT)
    other.write_text(SCRIPT)
    diag = _file_diagnosis(located)
    diag["fixes"][0]["edits"][0]["file"] = str(other)  # a fix of a file no frame of the user's code ran in
    panel = DiagnosisPanel.from_diagnosis(diag)
    _apply(panel, 0)
    assert panel.outcome is not None and not panel.outcome["applied"]
    assert (
        "located no code in" in panel.outcome["message"] and "Nothing was changed" in panel.outcome["message"]
    )
    assert other.read_text() == SCRIPT and not (tmp_path / f"other.py{BACKUP_SUFFIX}").exists()


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


def test_the_panel_shows_the_widget_and_leaves_the_fallback_to_the_display(
    comms: list[RecordingComm],
) -> None:
    """One HTML fallback (present/html.py, published by ipython/display.py): the panel computes none."""
    panel = _panel("leaf")
    data, _ = panel._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert "text/html" not in data


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
