"""The default ``%%gradcheck`` in a real ipykernel, driven over the Jupyter protocol: the panel is
shown at once with its fixes "verifying…", each fix's label follows its verification in the live
kernel (the widget's state over its comm, and the text/HTML/JSON fallback updated in place), and the
session is left as a plain failing run leaves it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kernel_driver
import pytest

from inplace_magic.present.html import MIME_TYPE

TESTS = Path(__file__).parent
EXAMPLE = TESTS.parent / "examples" / "resnet_skip_connection.py"
MODEL, SETUP, STEP = EXAMPLE.read_text().split("# %%\n")[1:]
SEED = "import random, numpy, torch\nrandom.seed(0); numpy.random.seed(0); torch.manual_seed(0)"
DIGEST = (
    "import json as _json\nfrom notebooks.statehash import digest as _digest\n"
    "print(_json.dumps(_digest({k: v for k, v in globals().items() if not k.startswith('_')})))"
)


class Kernel(kernel_driver.Kernel):
    """One real kernel (tests/kernel_driver.py); :meth:`execute` returns every iopub message the request
    caused."""

    def execute(self, code: str, cell: str | None = None, timeout: float = 300) -> list[dict[str, Any]]:
        return list(self.messages(self.request(code, cell), time.monotonic() + timeout))

    def stdout(self, code: str) -> str:
        return "".join(
            o["text"] for o in self.execute(code) if o["msg_type"] == "stream" and o["name"] == "stdout"
        )


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    started = Kernel()
    try:
        started.execute(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n%load_ext inplace_magic")
        started.freeze_the_heap()  # every session starts with %reset -f (tests/kernel_driver.py)
        yield started
    finally:
        started.shutdown()


def _session(kernel: Kernel, cells: list[str], last: str) -> list[dict[str, Any]]:
    kernel.execute("%reset -f")
    kernel.execute(SEED)
    for index, source in enumerate(cells):
        kernel.execute(source, f"cell-{index}")
    return kernel.execute(last, "cell-last")


def _displays(outputs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The diagnosis' display as first shown, and its updates in place (same display id)."""
    [first] = [o for o in outputs if o["msg_type"] == "display_data" and MIME_TYPE in o["data"]]
    display_id = first["transient"]["display_id"]
    updates = [
        o
        for o in outputs
        if o["msg_type"] == "update_display_data" and o["transient"]["display_id"] == display_id
    ]
    return first, updates


def _panel_statuses(outputs: list[dict[str, Any]]) -> list[str]:
    """The best fix's verification status in every state the kernel sent the panel, in order."""
    statuses = []
    for output in outputs:
        if output["msg_type"] not in ("comm_open", "comm_msg"):
            continue
        state = (output.get("data") or {}).get("state") or {}
        fixes = (state.get("state") or {}).get("fixes")
        if fixes:
            statuses.append(fixes[0]["verification"]["status"])
    return statuses


def test_the_default_gradcheck_offers_a_verified_gradient_preserving_fix(kernel: Kernel) -> None:
    outputs = _session(kernel, [MODEL, SETUP], "%%gradcheck\n" + STEP)
    errors = [o for o in outputs if o["msg_type"] == "error"]
    assert [e["ename"] for e in errors] == ["RuntimeError"]  # the user's error, once: run-all stops
    first, updates = _displays(outputs)
    assert "application/vnd.jupyter.widget-view+json" in first["data"]  # the panel, shown at once
    assert "SUGGESTED FIX (verifying…)" in first["data"]["text/plain"]
    assert first["data"][MIME_TYPE]["fixes"][0]["verified"] is False
    final = updates[-1]["data"]
    best = final[MIME_TYPE]["fixes"][0]
    assert best["kind"] == "inplace_kwarg" and best["verified"] and best["preserves_gradients"] is True
    assert "SUGGESTED FIX (verified, gradient-preserving)" in final["text/plain"]
    assert "verified, gradient-preserving" in final["text/html"]
    # the update is rendered after the face's diagnosis, and still names cells by their prompt
    for shown in (first["data"]["text/plain"], final["text/plain"]):
        assert "cell [" in shown and re.search(r"cell \d", shown) is None, shown
    assert "application/vnd.jupyter.widget-view+json" in final  # the panel stays in the display
    statuses = _panel_statuses(outputs)
    assert statuses[-1] == "verified" and "verifying" in statuses
    assert statuses.index("verifying") < len(statuses) - 1
    got = json.loads(
        kernel.stdout("import inplace_magic, json\nprint(json.dumps(inplace_magic.last_diagnosis()))")
    )
    assert got["executions"]["fix_verification"] == 2


def test_a_fix_that_leaves_the_error_is_shown_as_not_helping(kernel: Kernel) -> None:
    cells = ["import torch\nx = torch.randn(4, requires_grad=True)"]
    step = "a = x.exp()\na += 1\nb = a.sigmoid()\nb.mul_(2)\nb.sum().backward()"
    outputs = _session(kernel, cells, "%%gradcheck\n" + step)
    _, updates = _displays(outputs)
    final = updates[-1]["data"]
    assert "SUGGESTED FIX (did not help)" in final["text/plain"]
    assert any(f["verified"] for f in final[MIME_TYPE]["fixes"][1:])
    assert _panel_statuses(outputs)[-1] == "did_not_help"


def test_the_session_is_left_as_a_plain_failing_run_leaves_it(kernel: Kernel) -> None:
    _session(kernel, [MODEL, SETUP], STEP)
    plain = json.loads(kernel.stdout(DIGEST))
    _session(kernel, [MODEL, SETUP], "%%gradcheck\n" + STEP)
    checked = json.loads(kernel.stdout(DIGEST))
    assert sorted(k for k in plain.keys() | checked.keys() if plain.get(k) != checked.get(k)) == []
    assert "model" in plain and any(name.startswith("<random>") for name in plain)
