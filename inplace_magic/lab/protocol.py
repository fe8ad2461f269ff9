"""The kernel ⇄ JupyterLab extension protocol, Python side.

The TypeScript side is ``src/lab/protocol.ts``; both carry :data:`LAB_PROTOCOL_VERSION` and must
change together. The kernel opens a comm on :data:`COMM_TARGET` for every message it sends (so a
reloaded page still hears the next one); the open's data is a :class:`Hello` or a
:class:`DiagnosisMessage`. The extension answers on that comm with a :class:`Configure`.

Nothing on this wire is code: the extension edits cells only with fixes that arrived here (it matches
the diagnosis id and fix index), and the kernel only reads settings from what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from .._version import __version__
from ..panel.protocol import PanelState

LAB_PROTOCOL_VERSION = 1
COMM_TARGET = "inplace_magic"


class Hello(TypedDict):
    """Kernel -> extension, when ``%load_ext inplace_magic`` runs."""

    type: Literal["hello"]
    protocol: int
    version: str  # the kernel's inplace_magic version, for the mismatch message


class DiagnosisMessage(TypedDict):
    """Kernel -> extension: one diagnosis and its fixes (the panel's state)."""

    type: Literal["diagnosis"]
    protocol: int
    version: str
    state: PanelState


class Configure(TypedDict):
    """Extension -> kernel: the user's settings that the kernel side applies."""

    type: Literal["configure"]
    protocol: int
    autoDiagnose: bool  # run `%gradcheck on` in this kernel


def hello() -> Hello:
    return {"type": "hello", "protocol": LAB_PROTOCOL_VERSION, "version": __version__}


def diagnosis_message(state: PanelState) -> DiagnosisMessage:
    return {"type": "diagnosis", "protocol": LAB_PROTOCOL_VERSION, "version": __version__, "state": state}


def mismatch(theirs: object, their_version: object = None) -> str:
    """What to do when the extension speaks another protocol version."""
    version = f" (inplace_magic {their_version})" if isinstance(their_version, str) else ""
    return (
        f"The JupyterLab extension{version} speaks protocol {theirs!r} and this kernel's inplace_magic "
        f"{__version__} speaks {LAB_PROTOCOL_VERSION}: install the same inplace_magic version in the "
        "kernel's environment and in JupyterLab's, reload the page, then restart the kernel."
    )


def parse_configure(data: object) -> Configure | str:
    """The :class:`Configure` in ``data``, or why it is not one (a message for the user)."""
    if not isinstance(data, Mapping):
        return "The JupyterLab extension sent a message that is not an object."
    message: Mapping[str, Any] = data
    if message.get("protocol") != LAB_PROTOCOL_VERSION:
        return mismatch(message.get("protocol"), message.get("version"))
    if message.get("type") != "configure":
        return f"Unknown message type {message.get('type')!r} from the JupyterLab extension."
    auto = message.get("autoDiagnose")
    if not isinstance(auto, bool):
        return "The JupyterLab extension's settings carry no autoDiagnose flag."
    return {"type": "configure", "protocol": LAB_PROTOCOL_VERSION, "autoDiagnose": auto}
