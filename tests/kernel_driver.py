"""A real ipykernel driven over the Jupyter protocol as JupyterLab drives it, for the modules that test
the kernel face (test_kernel.py, test_kernel_verification.py). Each module keeps its own module-scoped
fixture (conftest.py groups and spreads the tests by the module a fixture is defined in); this is the
kernel they start, and how a request and its messages are read back.

Not named ``kernels``: tests/ is on sys.path, and transformers takes a module of that name for the
Hugging Face ``kernels`` package (``importlib.util.find_spec``), imports it, and then fails to import
every model (tests/test_library_cases.py, whose venv has no jupyter_client).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

from jupyter_client.manager import KernelManager


class Kernel:
    """One kernel process and its client: :meth:`request` sends code, :meth:`messages` and :meth:`reply`
    read back what it caused."""

    def __init__(self) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def request(self, code: str, cell: str | None = None) -> str:
        """Send an execute request (JupyterLab puts the cell id in its metadata); its message id."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        content.update(allow_stdin=False, stop_on_error=False)
        message = self.client.session.msg(
            "execute_request", content, metadata={"cellId": cell} if cell else {}
        )
        self.client.shell_channel.send(message)
        return str(message["header"]["msg_id"])

    def messages(self, msg_id: str, deadline: float) -> Iterator[dict[str, Any]]:
        """The iopub messages caused by ``msg_id`` (msg_type + content), until the kernel is idle."""
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("the kernel did not go idle in time") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return
            yield {"msg_type": msg["msg_type"], **msg["content"]}

    def reply(self, msg_id: str, deadline: float) -> dict[str, Any]:
        """The shell channel's execute_reply to ``msg_id``."""
        while True:
            reply = self.client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = reply["content"]
                return content

    def freeze_the_heap(self) -> None:
        """Leave what the kernel holds now (torch, ``torch._dynamo``, IPython, the extension) out of its
        later garbage collections (``gc.freeze``): each ``%reset -f`` collects twice, and a full
        collection over all of it costs the kernel about 0.4 s; with it frozen a reset walks only
        what the notebooks made since, which it collects as before. No name is left in the
        namespace."""
        msg_id = self.request("__import__('gc').freeze()")
        deadline = time.monotonic() + 60
        for _ in self.messages(msg_id, deadline):
            pass
        assert self.reply(msg_id, deadline)["status"] == "ok"

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
