"""The kernel side of the JupyterLab extension's comm: what it sends, what it accepts (the
autoDiagnose setting, a sync, a dismissal), the answer that says why a message was refused, and the
actionable message on a protocol mismatch. tests/test_channel_security.py drives the same channel
through a real kernel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import pytest

from inplace_magic import __version__
from inplace_magic.lab.comm import LabChannel, check
from inplace_magic.lab.protocol import COMM_TARGET, LAB_PROTOCOL_VERSION
from inplace_magic.panel.issued import IssuedDiagnoses
from inplace_magic.panel.protocol import PanelState

ROOT = Path(__file__).resolve().parents[1]
STATE: PanelState = json.loads((ROOT / "tests/fixtures/widget/states/skip_connection.json").read_text())


class FakeComm:
    """Records what the channel sends on one comm (as ipywidgets' DummyComm does)."""

    def __init__(self, **kwargs: Any) -> None:
        self.opened = kwargs
        self.closed = False
        self.handler: Any = None
        self.sent: list[Any] = []

    def send(self, data: Any) -> None:
        self.sent.append(data)

    def on_msg(self, callback: Any) -> None:
        self.handler = callback

    def close(self) -> None:
        self.closed = True

    def receive(self, data: Any) -> None:
        self.handler({"content": {"comm_id": "x", "data": data}})


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeComm]]:
    made: list[FakeComm] = []

    def create_comm(**kwargs: Any) -> FakeComm:
        made.append(FakeComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield made


class Auto:
    """Stands in for ``%gradcheck on|off`` of one shell."""

    def __init__(self, on: bool = False) -> None:
        self.on = on
        self.calls: list[bool] = []

    def switch(self, on: bool) -> None:
        self.calls.append(on)
        self.on = on

    def channel(self, issued: IssuedDiagnoses | None = None) -> LabChannel:
        return LabChannel(lambda: self.on, self.switch, issued or IssuedDiagnoses())


def test_hello_and_diagnosis_each_open_a_comm_on_the_target(
    comms: list[FakeComm],
) -> None:
    channel = Auto().channel()
    channel.open()
    channel.publish(STATE)
    assert [c.opened["target_name"] for c in comms] == [COMM_TARGET, COMM_TARGET]
    hello, diagnosis = (c.opened["data"] for c in comms)
    assert {k: hello[k] for k in ("type", "protocol", "version")} == {
        "type": "hello",
        "protocol": LAB_PROTOCOL_VERSION,
        "version": __version__,
    }
    assert "install the same inplace_magic version" in hello["mismatch"]
    assert diagnosis["type"] == "diagnosis" and diagnosis["state"]["id"] == STATE["id"]
    channel.close()
    assert [c.closed for c in comms] == [False, True]  # the extension closes the older ones
    json.dumps(diagnosis)  # plain JSON: no live objects on the wire


def test_the_auto_diagnose_setting_turns_gradcheck_on_and_off_again(comms: list[FakeComm]) -> None:
    auto = Auto()
    channel = auto.channel()
    channel.open()
    comms[-1].receive({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": True})
    assert auto.on and auto.calls == [True]
    comms[-1].receive({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": False})
    assert not auto.on and auto.calls == [True, False]


def test_the_setting_never_turns_off_what_the_user_turned_on(comms: list[FakeComm]) -> None:
    auto = Auto(on=True)  # the user ran %gradcheck on
    auto.channel().open()
    comms[-1].receive({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": False})
    comms[-1].receive({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": True})
    assert auto.on and auto.calls == []


def test_anything_else_is_refused_with_an_answer_and_nothing_runs(
    comms: list[FakeComm], capsys: pytest.CaptureFixture[str]
) -> None:
    auto = Auto()
    channel = auto.channel()
    channel.open()
    comms[-1].receive({"type": "execute", "protocol": LAB_PROTOCOL_VERSION, "code": "import os"})
    comms[-1].receive({"type": "configure", "protocol": 99, "autoDiagnose": True, "version": "9.0"})
    comms[-1].receive({"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": 1})
    assert auto.calls == []
    answers = comms[-1].sent
    assert [a["type"] for a in answers] == ["refused", "refused", "refused"]
    assert "Unknown message type 'execute'" in answers[0]["message"]
    assert "protocol 99" in answers[1]["message"]
    assert answers[2]["message"] == "Refused configure: autoDiagnose must be true or false, not 1."
    assert channel.problem is not None and "autoDiagnose" in channel.problem
    assert (
        "inplace_magic: The JupyterLab extension (inplace_magic 9.0) speaks protocol 99"
        in capsys.readouterr().err
    )


def test_a_sync_answers_with_the_diagnoses_not_dismissed(comms: list[FakeComm]) -> None:
    issued = IssuedDiagnoses()
    other = json.loads(json.dumps(STATE))
    other["id"] = "d-other"
    issued.issue(STATE, {})
    issued.issue(other, {})
    channel = Auto().channel(issued)
    channel.open()
    comms[-1].receive({"type": "dismiss", "protocol": LAB_PROTOCOL_VERSION, "diagnosisId": STATE["id"]})
    comms[-1].receive({"type": "sync", "protocol": LAB_PROTOCOL_VERSION})
    [answer] = comms[-1].sent
    assert answer["type"] == "diagnoses" and [s["id"] for s in answer["states"]] == ["d-other"]
    comms[-1].receive({"type": "dismiss", "protocol": LAB_PROTOCOL_VERSION, "diagnosisId": "d-none"})
    assert comms[-1].sent[-1]["type"] == "refused" and "d-none" in comms[-1].sent[-1]["message"]


def test_the_mismatch_message_says_what_to_do() -> None:
    message = check({"type": "configure", "protocol": 2 + LAB_PROTOCOL_VERSION, "version": "0.2.0"})
    assert isinstance(message, str)
    assert f"speaks {LAB_PROTOCOL_VERSION}" in message and "0.2.0" in message
    assert "install the same inplace_magic version" in message and "restart the kernel" in message
    assert check("autoDiagnose") == "The JupyterLab extension sent a message that is not an object."
    assert check({"type": "configure", "protocol": LAB_PROTOCOL_VERSION}) == (
        "Refused configure: the message has no autoDiagnose."
    )


def test_a_channel_never_opened_tells_no_one(comms: list[FakeComm]) -> None:
    # a shell without a kernel: no sidebar can be listening, and each comm would be kept for good
    channel = Auto().channel()
    channel.publish(STATE)
    assert comms == []
    channel.open()
    channel.close()
    channel.publish(STATE)
    assert [c.opened["data"]["type"] for c in comms] == ["hello"]
