"""The kernel side of the JupyterLab extension's comm: publish diagnoses, apply the user's settings,
answer a sync, and say why a message was refused.

Each message the kernel sends opens a fresh comm on :data:`~.protocol.COMM_TARGET` (the extension
closes the previous one; the latest stays open to hear its answer): a page reloaded since
``%load_ext`` still hears the next diagnosis, and a front end without the extension simply closes the
comm. The kernel also registers the target, so the extension can open a comm itself and ask for the
diagnoses again. Every message from the extension is checked against :mod:`.protocol`, field by
field; one that is not accepted changes nothing and is answered with a ``refused`` message. Sending
never raises into the user's cell.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from .._version import __version__
from ..panel.issued import ISSUED, IssuedDiagnoses
from ..panel.protocol import PanelState
from ..panel.wire import problem
from ..present.words import extension_mismatch, kernel_mismatch
from .protocol import (
    COMM_TARGET,
    EXTENSION_MESSAGES,
    LAB_PROTOCOL_VERSION,
    Diagnoses,
    DiagnosisMessage,
    ExtensionMessage,
    Hello,
    KernelMessage,
    Refused,
)


def _mismatch() -> str:
    return kernel_mismatch(__version__, LAB_PROTOCOL_VERSION)


def hello() -> Hello:
    return {
        "type": "hello",
        "protocol": LAB_PROTOCOL_VERSION,
        "version": __version__,
        "mismatch": _mismatch(),
    }


def diagnosis_message(state: PanelState) -> DiagnosisMessage:
    return {
        "type": "diagnosis",
        "protocol": LAB_PROTOCOL_VERSION,
        "version": __version__,
        "mismatch": _mismatch(),
        "state": state,
    }


def diagnoses(states: list[PanelState]) -> Diagnoses:
    return {
        "type": "diagnoses",
        "protocol": LAB_PROTOCOL_VERSION,
        "version": __version__,
        "mismatch": _mismatch(),
        "states": states,
    }


def refused(message: str) -> Refused:
    return {
        "type": "refused",
        "protocol": LAB_PROTOCOL_VERSION,
        "version": __version__,
        "mismatch": _mismatch(),
        "message": message,
    }


def check(data: object) -> ExtensionMessage | str:
    """The extension message in ``data`` (checked field by field), or why it is refused."""
    if not isinstance(data, dict):
        return "The JupyterLab extension sent a message that is not an object."
    theirs = data.get("protocol")
    if type(theirs) is not int or theirs != LAB_PROTOCOL_VERSION:
        return extension_mismatch(theirs, data.get("version"), __version__, LAB_PROTOCOL_VERSION)
    kind = data.get("type")
    expected = EXTENSION_MESSAGES.get(kind) if isinstance(kind, str) else None
    if expected is None:
        accepted = ", ".join(EXTENSION_MESSAGES)
        return f"Unknown message type {kind!r} from the JupyterLab extension (the kernel accepts {accepted})."
    wrong = problem(expected, data)
    return f"Refused {kind}: {wrong}." if wrong else data  # type: ignore[return-value]  # checked just above


class LabChannel:
    """The comm to the JupyterLab extension of one kernel.

    ``switch_auto(on)`` turns ``%gradcheck on`` or off and ``auto_is_on()`` says whether it is: the
    extension's ``autoDiagnose`` setting is the only thing it can make the kernel do besides asking
    for the diagnoses again. The setting turns off only what it turned on, never a ``%gradcheck on``
    the user typed.
    """

    def __init__(
        self,
        auto_is_on: Callable[[], bool],
        switch_auto: Callable[[bool], None],
        issued: IssuedDiagnoses = ISSUED,
    ) -> None:
        self.auto_is_on = auto_is_on
        self.switch_auto = switch_auto
        self.issued = issued
        self.problem: str | None = None  # the last message from the extension we could not accept
        self._comm: Any = None
        self._switched_on = False  # %gradcheck on came from the setting
        self._target = False
        # opened in a kernel only: a shell without one has no sidebar to tell, and its comm manager
        # would keep every comm made for it (each with a diagnosis's whole state) for good
        self._opened = False

    def open(self) -> None:
        """Listen on the target, and say hello (protocol and version): the extension sends its settings."""
        self._opened = True
        try:
            import comm

            comm.get_comm_manager().register_target(COMM_TARGET, self._on_open)
            self._target = True
        except Exception as error:  # no comm manager here (a terminal): the kernel opens comms only
            print(f"inplace_magic: the sidebar cannot ask this kernel ({error!r})", file=sys.stderr)
        self._send(hello())

    def publish(self, state: PanelState) -> None:
        """Send one diagnosis (the panel's state, with its fixes) to the sidebar, once :meth:`open`."""
        if self._opened:
            self._send(diagnosis_message(state))

    def close(self) -> None:
        self._opened = False
        if self._target:
            with contextlib.suppress(Exception):  # a kernel shutting down may have dropped it already
                import comm

                comm.get_comm_manager().unregister_target(COMM_TARGET, self._on_open)
            self._target = False
        if self._comm is not None:
            with contextlib.suppress(Exception):  # a kernel shutting down may have closed it already
                self._comm.close()
        self._comm = None

    def _send(self, data: KernelMessage) -> None:
        try:
            import comm

            opened = comm.create_comm(target_name=COMM_TARGET, data=dict(data))
            opened.on_msg(lambda msg: self._on_msg(opened, msg))
        except Exception as error:  # no comm support here (a terminal): nothing to tell
            print(f"inplace_magic: the JupyterLab sidebar was not told ({error!r})", file=sys.stderr)
            return
        self._comm = opened  # the extension closes the older ones (a page reloaded since never knew them)

    def _on_open(self, opened: Any, msg: Any) -> None:
        """The extension opened a comm on the target: its open data is a message like any other."""
        opened.on_msg(lambda inner: self._on_msg(opened, inner))
        self._handle(opened, _data(msg))

    def _on_msg(self, opened: Any, msg: Any) -> None:
        self._handle(opened, _data(msg))

    def _handle(self, opened: Any, data: object) -> None:
        message = check(data)
        if isinstance(message, str):
            self._refuse(opened, message)
            return
        self.problem = None
        if message["type"] == "configure":
            self._configure(message["autoDiagnose"])
        elif message["type"] == "sync":
            self._answer(opened, diagnoses(list(self.issued.current())))
        elif not self.issued.dismiss(message["diagnosisId"]):
            self._refuse(opened, f"This kernel issued no diagnosis {message['diagnosisId']!r}.")

    def _configure(self, auto: bool) -> None:
        if auto and not self.auto_is_on():
            self.switch_auto(True)
            self._switched_on = True
        elif not auto and self._switched_on:
            self._switched_on = False
            if self.auto_is_on():
                self.switch_auto(False)

    def _refuse(self, opened: Any, message: str) -> None:
        if message != self.problem:
            print(f"inplace_magic: {message}", file=sys.stderr)
        self.problem = message
        self._answer(opened, refused(message))

    def _answer(self, opened: Any, data: KernelMessage) -> None:
        try:
            opened.send(dict(data))
        except Exception as error:  # the comm closed meanwhile: the message is lost, not the cell
            print(f"inplace_magic: the JupyterLab sidebar was not answered ({error!r})", file=sys.stderr)


def _data(msg: Any) -> object:
    return msg.get("content", {}).get("data") if isinstance(msg, dict) else None
