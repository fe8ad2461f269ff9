"""B9: the first diagnosis in a fresh kernel against the second one, in a real ipykernel driven over
the Jupyter protocol (with the widget panel, as in JupyterLab).

Each option set gets its own fresh kernel: ``%load_ext inplace_magic``, the model's cell, one plain
failing cell (IPython's first traceback costs it, not us: it is paid with or without the magic), a
pause as long as a user's glance at the error, then the same failing cell under ``%%gradcheck``
twice. The figure is the round trip of each execute request, from send to the kernel going idle.

The warm-up that ``%load_ext`` starts must not slow the user's cells down: :func:`first_cell` times
the first cell after ``%load_ext`` (building a model and training it a few steps) while the warm-up
runs, against the same cell in another fresh kernel where the extension was loaded without one.

Run directly (``python benchmarks/fresh.py [REPEATS]``) for these rows alone, each the median of
REPEATS fresh kernels (3 by default), the configurations interleaved.
"""

from __future__ import annotations

import statistics
import sys
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


SETUP = (
    f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport torch\ntorch.set_num_threads(1)\n"
    "from models import make_model\nmodel, data = make_model('resnet-tiny', buggy=True)\n"
)


def _first_and_second_once(options: str) -> tuple[float, float]:
    from models import STEP_CELL

    kernel = _Kernel()
    try:
        kernel.execute("%load_ext inplace_magic")
        _, error = kernel.execute(SETUP)
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
    return first, second


def first_and_second(options: str, repeats: int = 1) -> dict[str, Any]:
    """The first and the second diagnosis of ``options`` in ``repeats`` fresh kernels (medians)."""
    runs = [_first_and_second_once(options) for _ in range(repeats)]
    first = statistics.median(r[0] for r in runs)
    second = statistics.median(r[1] for r in runs)
    return {
        "options": options or "(fixes suggested)",
        "first_s": round(first, 3),
        "second_s": round(second, 3),
        "first_minus_second_s": round(statistics.median(r[0] - r[1] for r in runs), 3),
        "runs": repeats,
    }


# the first cell a user runs after %load_ext: a model built and trained a few steps (no error)
FIRST_CELL = (
    f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport torch\ntorch.set_num_threads(1)\n"
    "from models import make_model\nmodel, data = make_model('resnet-tiny', buggy=False)\n"
    "for _ in range(30):\n"
    "    model.zero_grad()\n"
    "    model(data).pow(2).mean().backward()\n"
)
# ``%load_ext inplace_magic`` without the warm-up: the same magics, hooks and imports
WITHOUT_WARM_UP = "from inplace_magic.ipython.magic import load\nload(get_ipython())"


def _first_cell_once(warm_up: bool) -> float:
    kernel = _Kernel()
    try:
        _, error = kernel.execute("import torch")  # what the user imported before, in both kernels
        assert error is None, error
        _, error = kernel.execute("%load_ext inplace_magic" if warm_up else WITHOUT_WARM_UP)
        assert error is None, error
        seconds, error = kernel.execute(FIRST_CELL)
        assert error is None, error
    finally:
        kernel.close()
    return seconds


def first_cell(repeats: int) -> dict[str, Any]:
    """The first cell after ``%load_ext``, with the warm-up running, and without a warm-up."""
    warm: list[float] = []
    cold: list[float] = []
    for _ in range(repeats):
        warm.append(_first_cell_once(warm_up=True))
        cold.append(_first_cell_once(warm_up=False))
    return {
        "warm_up_s": round(statistics.median(warm), 3),
        "none_s": round(statistics.median(cold), 3),
        "ratio": round(statistics.median(warm) / statistics.median(cold), 2),
        "runs": repeats,
    }


def render(rows: list[dict[str, Any]], cell: dict[str, Any]) -> str:
    lines = [
        "| B9 fresh kernel (resnet-tiny) | first diagnosis | second | first - second | runs |",
        "|---|---|---|---|---|",
        *(
            f"| `{r['options']}` | {r['first_s']} s | {r['second_s']} s | {r['first_minus_second_s']} s "
            f"| {r['runs']} |"
            for r in rows
        ),
        "",
        "| B9 the first cell after `%load_ext` | with the warm-up | without one | ratio | runs |",
        "|---|---|---|---|---|",
        f"| model built, 30 steps | {cell['warm_up_s']} s | {cell['none_s']} s | {cell['ratio']}x "
        f"| {cell['runs']} |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import json

    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows = [first_and_second(options, repeats) for options in ("--no-fix", "")]
    cell = first_cell(repeats)
    print(json.dumps({"B9_first_diagnosis": rows, "B9_first_cell": cell}))
    print(render(rows, cell))
