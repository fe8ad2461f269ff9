"""The kernel side of the JupyterLab extension's comm: publish diagnoses, apply the user's settings.

Each message opens a fresh comm on :data:`~.lab_protocol.COMM_TARGET` (the extension closes the
previous one; the latest stays open to hear its answer): a page reloaded since ``%load_ext`` still
hears the next diagnosis, and a front end without the extension simply closes the comm. Sending never
raises into the user's cell.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from ..panel.protocol import PanelState
from .protocol import COMM_TARGET, diagnosis_message, hello, parse_configure


class LabChannel:
    """The comm to the JupyterLab extension of one kernel.

    ``switch_auto(on)`` turns ``%gradcheck on`` or off and ``auto_is_on()`` says whether it is: the
    extension's ``autoDiagnose`` setting is the only thing it can make the kernel do. The setting
    turns off only what it turned on, never a ``%gradcheck on`` the user typed.
    """

    def __init__(self, auto_is_on: Callable[[], bool], switch_auto: Callable[[bool], None]) -> None:
        self.auto_is_on = auto_is_on
        self.switch_auto = switch_auto
        self.problem: str | None = None  # the last message from the extension we could not accept
        self._comm: Any = None
        self._switched_on = False  # %gradcheck on came from the setting

    def open(self) -> None:
        """Say hello (protocol and version); the extension answers with its settings."""
        self._send(dict(hello()))

    def publish(self, state: PanelState) -> None:
        """Send one diagnosis (the panel's state, with its fixes) to the sidebar."""
        self._send(dict(diagnosis_message(state)))

    def close(self) -> None:
        if self._comm is not None:
            with contextlib.suppress(Exception):  # a kernel shutting down may have closed it already
                self._comm.close()
        self._comm = None

    def _send(self, data: dict[str, Any]) -> None:
        try:
            import comm

            opened = comm.create_comm(target_name=COMM_TARGET, data=data)
            opened.on_msg(self._on_msg)
        except Exception as error:  # no comm support here (a terminal): nothing to tell
            print(f"inplace_magic: the JupyterLab sidebar was not told ({error!r})", file=sys.stderr)
            return
        self._comm = opened  # the extension closes the older ones (a page reloaded since never knew them)

    def _on_msg(self, msg: Any) -> None:
        data = msg.get("content", {}).get("data") if isinstance(msg, dict) else None
        parsed = parse_configure(data)
        if isinstance(parsed, str):
            if parsed != self.problem:
                print(f"inplace_magic: {parsed}", file=sys.stderr)
            self.problem = parsed
            return
        self.problem = None
        if parsed["autoDiagnose"] and not self.auto_is_on():
            self.switch_auto(True)
            self._switched_on = True
        elif not parsed["autoDiagnose"] and self._switched_on:
            self._switched_on = False
            if self.auto_is_on():
                self.switch_auto(False)
