"""B9: the first diagnosis in a fresh kernel against the second one, in a real ipykernel driven over
the Jupyter protocol (with the widget panel, as in JupyterLab).

Each option set gets its own fresh kernel: ``%load_ext inplace_magic``, the model's cell, one plain
failing cell (IPython's first traceback costs it, not us: it is paid with or without the magic), a
pause as long as a user's glance at the error, then the same failing cell under ``%%gradcheck``
twice. The figure is the round trip of each execute request, from send to the kernel going idle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THINK_S = 2.0  # between %load_ext and the first diagnosis a user runs cells and reads their output


class _Kernel:
    def __init__(self) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def execute(self, code: str, timeout: float = 300) -> tuple[float, str | None]:
        """Seconds until the kernel is idle again, and the error's name if the cell failed."""
        start = time.perf_counter()
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        error = None
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                error = msg["content"]["ename"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return time.perf_counter() - start, error

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def first_and_second(options: str) -> dict[str, Any]:
    from models import STEP_CELL

    kernel = _Kernel()
    try:
        kernel.execute("%load_ext inplace_magic")
        setup = (
            f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport torch\ntorch.set_num_threads(1)\n"
            "from models import make_model\nmodel, data = make_model('resnet-tiny', buggy=True)\n"
        )
        _, error = kernel.execute(setup)
        assert error is None, error
        _, error = kernel.execute(STEP_CELL)
        assert error == "RuntimeError", error
        time.sleep(THINK_S)
        cell = f"%%gradcheck {options}\n{STEP_CELL}"
        first, error = kernel.execute(cell)
        assert error == "RuntimeError", error
        second, error = kernel.execute(cell)
        assert error == "RuntimeError", error
    finally:
        kernel.close()
    return {
        "options": options or "(fixes suggested)",
        "first_s": round(first, 3),
        "second_s": round(second, 3),
        "first_minus_second_s": round(first - second, 3),
    }
