"""Nothing let in: a page that rewrites the panel's state, or talks to the kernel over the sidebar's
comm, cannot make the kernel write a file or apply a fix it did not issue.

A real ipykernel, driven over the Jupyter protocol with jupyter_client: the messages below are the
comm messages a page script could send (the widget's own ``update`` and ``custom`` messages, and
messages on the ``inplace_magic`` comm target), and every answer is read from the kernel's iopub.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from inplace_magic.diagnose.contract import DiagnosisJSON
from inplace_magic.lab.protocol import COMM_TARGET, LAB_PROTOCOL_VERSION
from inplace_magic.panel.protocol import PROTOCOL_VERSION, PanelState
from inplace_magic.panel.wire import problem
from inplace_magic.present.html import MIME_TYPE

SETUP = "%load_ext inplace_magic\nimport torch\nimport torch.nn as nn\ntorch.manual_seed(0)\n"
MODEL = """\
class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.shortcut = nn.Conv2d(channels, channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h):
        s = self.shortcut(h)
        out = self.act(h)
        return self.conv(out) + s


stem = nn.Conv2d(3, 4, 3, padding=1)
block = Block(4)
optimizer = torch.optim.SGD([*stem.parameters(), *block.parameters()], lr=0.1)
"""
STEP = """\
%%gradcheck
images = torch.randn(2, 3, 8, 8)
optimizer.zero_grad()
loss = block(stem(images)).pow(2).mean()
loss.backward()
optimizer.step()
"""
VICTIM = "# a file the kernel can write, and no fix of the kernel's ever targeted\nSECRET = 1\n"


@dataclass
class Comm:
    comm_id: str
    target: str
    data: dict[str, Any]


@dataclass
class Kernel:
    """One real kernel, and every comm it opened (by target name)."""

    manager: KernelManager
    client: Any
    folder: Path
    comms: list[Comm] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # comm_msg answers, in order

    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        message = self.client.session.msg(msg_type, content)
        self.client.shell_channel.send(message)
        return str(message["header"]["msg_id"])

    def _drain(self, until: Callable[[dict[str, Any]], bool], timeout: float) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(msg)
            content = msg["content"]
            if msg["msg_type"] == "comm_open":
                self.comms.append(Comm(content["comm_id"], content["target_name"], content["data"]))
            elif msg["msg_type"] == "comm_msg":
                self.messages.append(msg)
            if until(msg):
                return seen
        raise AssertionError(f"the kernel did not answer in {timeout} s: {[m['msg_type'] for m in seen]}")

    def execute(self, code: str, timeout: float = 180) -> list[dict[str, Any]]:
        msg_id = self._send("execute_request", {"code": code, "silent": False, "store_history": True})
        return self._drain(
            lambda m: (
                m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            ),
            timeout,
        )

    def comm_msg(self, comm_id: str, data: object, timeout: float = 30) -> list[dict[str, Any]]:
        """Send ``data`` on a comm as a page would; the comm messages the kernel sent back."""
        msg_id = self._send("comm_msg", {"comm_id": comm_id, "data": data})
        return self._answers(msg_id, timeout)

    def comm_open(self, target: str, data: object, timeout: float = 30) -> list[dict[str, Any]]:
        msg_id = self._send("comm_open", {"comm_id": uuid.uuid4().hex, "target_name": target, "data": data})
        return self._answers(msg_id, timeout)

    def _answers(self, msg_id: str, timeout: float) -> list[dict[str, Any]]:
        seen = self._drain(
            lambda m: (
                m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            ),
            timeout,
        )
        return [m["content"]["data"] for m in seen if m["msg_type"] == "comm_msg"]

    def latest(self, target: str) -> Comm:
        return [c for c in self.comms if c.target == target][-1]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    folder = tmp_path_factory.mktemp("kernel")
    (folder / "victim.py").write_text(VICTIM)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(folder))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    running = Kernel(manager, client, folder)
    try:
        for code in (SETUP, MODEL):
            running.execute(code)
        outputs = running.execute(STEP)
        running.diagnosis = next(  # type: ignore[attr-defined]
            m["content"]["data"][MIME_TYPE]
            for m in outputs
            if m["msg_type"] == "display_data" and MIME_TYPE in m["content"]["data"]
        )
        yield running
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _panel(kernel: Kernel) -> Comm:
    """The diagnosis panel's widget comm (its model: the anywidget with our ``state`` trait)."""
    return [c for c in kernel.comms if c.target == "jupyter.widget" and "state" in c.data["state"]][-1]


def _sent(kernel: Kernel, comm: Comm) -> list[dict[str, Any]]:
    """What the kernel sent on ``comm`` after opening it, in order."""
    return [m["content"]["data"] for m in kernel.messages if m["content"]["comm_id"] == comm.comm_id]


def _issued_state(kernel: Kernel) -> PanelState:
    """The panel's state as the kernel last sent it (the fixes' verification updates it after it opens)."""
    panel = _panel(kernel)
    updates = [d["state"]["state"] for d in _sent(kernel, panel) if "state" in (d.get("state") or {})]
    state: PanelState = updates[-1] if updates else panel.data["state"]["state"]
    return state


def _lab_diagnosis(kernel: Kernel) -> dict[str, Any]:
    """The sidebar's latest diagnosis message."""
    channel = kernel.latest(COMM_TARGET)
    diagnoses = [d for d in _sent(kernel, channel) if d.get("type") == "diagnosis"]
    return diagnoses[-1] if diagnoses else channel.data


def _forged(state: PanelState, victim: Path) -> dict[str, Any]:
    """The state with every fix rewritten to write ``victim``, plus a fix the kernel never issued."""
    forged: dict[str, Any] = json.loads(json.dumps(state))
    evil = {"file": str(victim), "line": 1, "old": VICTIM.splitlines()[0], "new": "import os; os.system('x')"}
    for fix in forged["fixes"]:
        fix["edits"] = [evil]
        fix["cells"] = {"0": "import os; os.system('x')"}
    forged["fixes"].append({**forged["fixes"][0], "index": len(forged["fixes"])})
    return forged


def _apply(kernel: Kernel, state: PanelState, index: object, **extra: object) -> dict[str, Any]:
    request = {
        "type": "apply",
        "protocol": PROTOCOL_VERSION,
        "diagnosisId": state["id"],
        "fixIndex": index,
        "requestId": uuid.uuid4().hex,
        **extra,
    }
    answers = kernel.comm_msg(_panel(kernel).comm_id, {"method": "custom", "content": request})
    outcomes = [
        a["state"]["outcome"] for a in answers if a.get("method") == "update" and "outcome" in a["state"]
    ]
    assert outcomes, answers
    outcome: dict[str, Any] = outcomes[-1]
    assert outcome["requestId"] == (request["requestId"] if isinstance(request["requestId"], str) else "")
    return outcome


def test_the_kernel_publishes_a_diagnosis_that_follows_the_protocol(kernel: Kernel) -> None:
    diagnosis: DiagnosisJSON = kernel.diagnosis  # type: ignore[attr-defined]
    assert problem(DiagnosisJSON, diagnosis) is None
    state = _issued_state(kernel)
    assert problem(PanelState, state) is None
    assert state["fixes"], "the skip connection has a fix"
    lab = _lab_diagnosis(kernel)
    assert lab["type"] == "diagnosis" and lab["state"] == state  # one issue: panel and sidebar agree


def test_a_state_rewritten_by_the_page_then_apply_writes_nothing_and_says_why(kernel: Kernel) -> None:
    state = _issued_state(kernel)
    victim = kernel.folder / "victim.py"
    before = _files(kernel.folder)
    forged = _forged(state, victim)

    answers = kernel.comm_msg(_panel(kernel).comm_id, {"method": "update", "state": {"state": forged}})
    synced = [a["state"] for a in answers if a.get("method") == "update"]
    # the kernel answers: its own state again, and an outcome that says the change was ignored
    assert any(s.get("state") == state for s in synced), synced
    [refusal] = [s["outcome"] for s in synced if s.get("outcome")]
    assert refusal["type"] == "update" and refusal["applied"] is False
    assert "only the kernel writes them, so the change was ignored" in refusal["message"]

    # Apply of fix 0 gets the fix the kernel issued: its cell text to copy, no file touched
    outcome = _apply(kernel, state, 0)
    assert outcome["path"] == "copy" and outcome["applied"] is False
    assert [c["text"] for c in outcome["copy"]] == list(state["fixes"][0]["cells"].values())
    assert "os.system" not in json.dumps(outcome)

    # the fix the page added does not exist for the kernel
    extra = _apply(kernel, state, len(state["fixes"]))
    assert extra["path"] == "none" and f"has no fix {len(state['fixes'])}" in extra["message"]
    assert _files(kernel.folder) == before


@pytest.mark.parametrize(
    ("index", "extra", "why"),
    [
        (True, {}, "fixIndex must be an integer, not true"),
        ("0", {}, 'fixIndex must be an integer, not "0"'),
        (
            0,
            {"edits": [{"file": "victim.py", "line": 1, "old": "", "new": "x"}]},
            "fields it never has: edits",
        ),
        (0, {"protocol": True}, "The panel speaks protocol True"),
    ],
    ids=["index-bool", "index-str", "request-with-edits", "protocol-bool"],
)
def test_a_malformed_apply_request_writes_nothing_and_says_why(
    kernel: Kernel, index: object, extra: dict[str, object], why: str
) -> None:
    before = _files(kernel.folder)
    outcome = _apply(kernel, _issued_state(kernel), index, **extra)
    assert outcome["applied"] is False and outcome["path"] == "none" and outcome["copy"] == []
    assert why in outcome["message"]
    assert _files(kernel.folder) == before


def test_the_lab_channel_refuses_what_it_does_not_take_writes_nothing_and_says_why(kernel: Kernel) -> None:
    state = _issued_state(kernel)
    channel = kernel.latest(COMM_TARGET)
    before = _files(kernel.folder)
    forged = _forged(state, kernel.folder / "victim.py")
    tampering: list[tuple[object, str]] = [
        # a diagnosis handed to the kernel, as if the kernel had issued it
        (
            {
                "type": "diagnosis",
                "protocol": LAB_PROTOCOL_VERSION,
                "version": "0",
                "mismatch": "",
                "state": forged,
            },
            "Unknown message type 'diagnosis'",
        ),
        # an apply that describes its own fix
        (
            {
                "type": "apply",
                "protocol": LAB_PROTOCOL_VERSION,
                "diagnosisId": state["id"],
                "fixIndex": 0,
                "edits": forged["fixes"][0]["edits"],
            },
            "Unknown message type 'apply'",
        ),
        ({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": 1}, "not 1"),
        (
            {"type": "sync", "protocol": LAB_PROTOCOL_VERSION, "states": [forged]},
            "fields it never has: states",
        ),
        (
            {"type": "dismiss", "protocol": LAB_PROTOCOL_VERSION, "diagnosisId": True},
            "diagnosisId must be a string",
        ),
        ({"type": "configure", "protocol": True, "autoDiagnose": True}, "speaks protocol True"),
        ("import os", "not an object"),
    ]
    for data, why in tampering:
        [answer] = kernel.comm_msg(channel.comm_id, data)
        assert answer["type"] == "refused" and why in answer["message"], (data, answer)
        assert answer["protocol"] == LAB_PROTOCOL_VERSION and answer["mismatch"]
    assert _files(kernel.folder) == before

    # and the kernel's diagnoses are still its own: a page reloaded since asks, and gets them
    [synced] = kernel.comm_open(COMM_TARGET, {"type": "sync", "protocol": LAB_PROTOCOL_VERSION})
    assert synced["type"] == "diagnoses"
    assert synced["states"][-1] == state
