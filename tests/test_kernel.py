"""``%%gradcheck`` in a real ipykernel, driven over the Jupyter protocol as JupyterLab drives it.

Each execute request carries JupyterLab's ``cellId`` metadata, so the kernel sees real cell ids.
One kernel serves the whole module (``%reset -f`` between notebooks) to keep the suite fast; a
last test runs a notebook through nbclient, as ``jupyter nbconvert --execute`` would.
"""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kernel_driver
import nbformat
import pytest
from conftest import negative_cases, positive_cases
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from notebooks import statecases
from notebooks.casebook import cell_id, cells_of, plain_traceback, score, sources_with_magic

from inplace_magic.present.html import MIME_TYPE

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOTEBOOKS = Path(__file__).parent / "notebooks"


@dataclass
class Executed:
    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)  # iopub messages: msg_type + content

    @property
    def error(self) -> dict[str, Any] | None:
        return next((o for o in self.outputs if o["msg_type"] == "error"), None)

    @property
    def diagnosis(self) -> dict[str, Any] | None:
        for output in self.outputs:
            data = output.get("data") or {}
            if MIME_TYPE in data:
                found: dict[str, Any] = data[MIME_TYPE]
                return found
        return None

    def text(self, name: str = "stdout") -> str:
        return "".join(o["text"] for o in self.outputs if o["msg_type"] == "stream" and o["name"] == name)


# what a notebook shows of a request (status, execute_input and comm messages are left out)
OUTPUTS = ("stream", "display_data", "update_display_data", "execute_result", "error")


class Kernel(kernel_driver.Kernel):
    def execute(self, code: str, cell: str | None = None, timeout: float = 120) -> Executed:
        msg_id = self.request(code, cell)
        deadline = time.monotonic() + timeout
        done = Executed(reply={})
        for msg in self.messages(msg_id, deadline):
            if msg["msg_type"] in OUTPUTS:
                done.outputs.append(msg)
        done.reply = self.reply(msg_id, deadline)
        return done

    def run_notebook(self, case: Path, sources: list[str]) -> list[Executed]:
        self.execute(f"%reset -f\nimport sys\nsys.path.insert(0, {str(case.parent)!r})")
        self.execute(
            "import random, numpy, torch\nrandom.seed(0); numpy.random.seed(0); torch.manual_seed(0)"
        )
        return [self.execute(source, cell_id(case, index)) for index, source in enumerate(sources)]


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    started = Kernel()
    try:
        assert started.execute("%load_ext inplace_magic").reply["status"] == "ok"
        started.freeze_the_heap()  # every notebook starts with %reset -f (tests/kernel_driver.py)
        yield started
    finally:
        started.shutdown()


@pytest.mark.parametrize("case", positive_cases(), ids=lambda p: p.stem)
def test_case_in_a_kernel_is_diagnosed_in_the_right_cell(kernel: Kernel, case: Path) -> None:
    last = kernel.run_notebook(case, sources_with_magic(case, "%%gradcheck --no-fix"))[-1]
    assert last.reply["status"] == "error" and last.reply["ename"] == "RuntimeError"  # run-all stops
    assert last.error is not None and "replaying the cell" in _ANSI.sub(
        "", "\n".join(last.error["traceback"])
    )
    assert score(last.diagnosis, case) == []


@pytest.mark.parametrize("case", negative_cases(), ids=lambda p: p.stem)
def test_negative_in_a_kernel_passes_through_unchanged(kernel: Kernel, case: Path) -> None:
    plain = kernel.run_notebook(case, [c.source for c in cells_of(case)])[-1]
    magic = kernel.run_notebook(case, sources_with_magic(case))[-1]
    if magic.text("stderr") != plain.text("stderr"):
        # torch warns some things once per process (TORCH_WARN_ONCE): compare with a second plain run
        plain = kernel.run_notebook(case, [c.source for c in cells_of(case)])[-1]
    assert magic.diagnosis is None
    assert _kinds(magic) == _kinds(plain)
    assert magic.text("stdout") == plain.text("stdout") and magic.text("stderr") == plain.text("stderr")
    assert (magic.reply["status"], magic.reply.get("ename"), magic.reply.get("evalue")) == (
        plain.reply["status"],
        plain.reply.get("ename"),
        plain.reply.get("evalue"),
    )
    ours_rich = [o for o in magic.outputs if o["msg_type"] != "stream"]
    theirs_rich = [o for o in plain.outputs if o["msg_type"] != "stream"]
    for ours, theirs in zip(ours_rich, theirs_rich, strict=True):
        if ours["msg_type"] == "error":
            assert plain_traceback("\n".join(ours["traceback"])) == plain_traceback(
                "\n".join(theirs["traceback"])
            )
        if ours["msg_type"] == "execute_result":
            assert ours["data"] == theirs["data"]


def _kinds(executed: Executed) -> list[str]:
    """Output kinds, consecutive stream chunks counted once (how text is chunked is timing)."""
    kinds: list[str] = []
    for output in executed.outputs:
        kind = output["msg_type"] + ":" + output.get("name", "")
        if not kinds or kinds[-1] != kind or output["msg_type"] != "stream":
            kinds.append(kind)
    return kinds


MODEL_CELL = """\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.act = nn.ELU(inplace=True)

    def forward(self, x):
        residual = x
        x = self.act(self.fc(x))
        x += residual
        return x
"""

TRAIN_CELL = """\
%%gradcheck
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), Block(8), nn.Linear(8, 1))
loss = model(torch.randn(16, 4)).pow(2).mean()
loss.backward()
"""


def test_cross_cell_diagnosis_and_fix_target_the_cell_that_defines_the_model(kernel: Kernel) -> None:
    kernel.execute("%reset -f")
    kernel.execute(MODEL_CELL, "model-cell")
    last = kernel.execute(TRAIN_CELL, "train-cell")
    diagnosis = last.diagnosis
    assert diagnosis is not None
    assert (diagnosis["inplace"]["cell_id"], diagnosis["inplace"]["code"]) == ("model-cell", "x += residual")
    assert diagnosis["saved_by"]["cell_id"] == "model-cell"
    assert diagnosis["error"]["line"] == 5  # loss.backward(), counting the %%gradcheck line
    assert diagnosis["fixes"], "a fix is suggested"
    assert {edit["cell_id"] for edit in diagnosis["fixes"][0]["edits"]} == {"model-cell"}
    html = next(o for o in last.outputs if MIME_TYPE in (o.get("data") or {}))["data"]["text/html"]
    assert "jp-InplaceMagic-report" in html and "x += residual" in html


def test_gradcheck_on_in_a_kernel(kernel: Kernel) -> None:
    kernel.execute("%reset -f")
    kernel.execute(MODEL_CELL, "model-cell")
    assert kernel.execute("%gradcheck on --no-fix").reply["status"] == "ok"
    try:
        last = kernel.execute(TRAIN_CELL.replace("%%gradcheck\n", ""), "plain-train-cell")
    finally:
        kernel.execute("%gradcheck off")
    kinds = [o["msg_type"] for o in last.outputs]
    assert kinds.index("error") < kinds.index("display_data")  # the usual traceback, then the report
    assert last.diagnosis is not None and last.diagnosis["inplace"]["cell_id"] == "model-cell"
    assert last.reply["status"] == "error"


SLOW_CELL = """\
%%gradcheck --no-fix
import time
calls.append(1)
t.add_(1)
time.sleep(2.5)
y = w.sigmoid()
y.mul_(2)
y.sum().backward()
"""


def test_long_replay_shows_progress_and_ctrl_c_restores_state(kernel: Kernel) -> None:
    kernel.execute("%reset -f")
    kernel.execute("import torch\ncalls = []\nt = torch.zeros(3)\nw = torch.ones(3, requires_grad=True)")
    slow = kernel.execute(SLOW_CELL, "slow")
    progress = [
        o for o in slow.outputs if "inplace_magic: replaying" in str(o.get("data", {}).get("text/plain"))
    ]
    assert progress and progress[0]["msg_type"] == "display_data"
    assert (
        progress[-1]["msg_type"] == "update_display_data"
        and "done after" in progress[-1]["data"]["text/plain"]
    )
    assert slow.diagnosis is not None and slow.diagnosis["inplace"]["code"] == "y.mul_(2)"

    # now interrupt the replay: the first run ends after ~2.5 s, the replay sleeps from then on
    kernel.execute("%reset -f")
    kernel.execute("import torch\ncalls = []\nt = torch.zeros(3)\nw = torch.ones(3, requires_grad=True)")
    message = kernel.client.session.msg(
        "execute_request", {"code": SLOW_CELL, "silent": False, "store_history": True}
    )
    kernel.client.shell_channel.send(message)
    _wait_for_the_replay(kernel, message["header"]["msg_id"])
    kernel.manager.interrupt_kernel()
    interrupted = _wait_for_error(kernel, message["header"]["msg_id"])
    assert interrupted["ename"] == "RuntimeError"
    assert "interrupted (Ctrl-C)" in _ANSI.sub("", "\n".join(interrupted["traceback"]))
    state = kernel.execute("print(calls, t.tolist(), t._version, w.grad)")
    assert state.text() == "[1] [1.0, 1.0, 1.0] 1 None\n"


def _wait_for_the_replay(kernel: Kernel, msg_id: str) -> None:
    """Until the replay's progress line shows: 1 s into the replay, which sleeps 2.5 s (no race with
    the first run's own sleep, however slow the machine)."""
    while True:
        try:
            msg = kernel.client.get_iopub_msg(timeout=60)
        except queue.Empty:
            raise AssertionError("no replay started") from None
        shown = str((msg["content"].get("data") or {}).get("text/plain"))
        if msg["parent_header"].get("msg_id") == msg_id and "inplace_magic: replaying" in shown:
            return


def _wait_for_error(kernel: Kernel, msg_id: str) -> dict[str, Any]:
    error: dict[str, Any] | None = None
    while True:
        try:
            msg = kernel.client.get_iopub_msg(timeout=60)
        except queue.Empty:
            raise AssertionError("the kernel did not finish the interrupted cell") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = msg["content"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            assert error is not None
            return error


def test_nbclient_run_all_stops_at_the_diagnosed_cell(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext inplace_magic"),
        nbformat.v4.new_code_cell(MODEL_CELL),
        nbformat.v4.new_code_cell(TRAIN_CELL.replace("%%gradcheck", "%%gradcheck --no-fix")),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(CellExecutionError) as raised:
        client.execute()
    assert "RuntimeError" in str(raised.value) and "modified by an inplace operation" in str(raised.value)
    failing, after = nb.cells[2], nb.cells[3]
    # a first replay in a fresh kernel can take over a second: its progress line may come first
    outputs = [o for o in failing.outputs if "inplace_magic: replaying" not in str(o.get("data", {}))]
    assert [output["output_type"] for output in outputs] == ["error", "display_data"]
    assert {"text/plain", "text/html", MIME_TYPE} <= set(outputs[1]["data"])
    assert after.outputs == [] and after.execution_count is None


HANGS_IN_REPLAY = """\
import os, time
calls.append(1)
t.add_(1)
if os.path.exists(MARK):
    while True:  # only the replay gets here: the first run left the marker file
        time.sleep(0.05)
open(MARK, "w").close()
y = w.sigmoid()
y.mul_(2)
y.sum().backward()
"""


def _hanging_session(kernel: Kernel, mark: Path) -> None:
    kernel.execute("%reset -f")
    kernel.execute(
        "import torch\ncalls = []\nt = torch.zeros(3)\nw = torch.ones(3, requires_grad=True)\n"
        f"MARK = {str(mark)!r}"
    )


def test_a_replay_past_its_time_limit_ends_and_the_kernel_is_restored(kernel: Kernel, tmp_path: Path) -> None:
    _hanging_session(kernel, tmp_path / "mark")
    started = time.monotonic()
    last = kernel.execute("%%gradcheck --no-fix --time-limit 1\n" + HANGS_IN_REPLAY, "hangs", timeout=60)
    assert time.monotonic() - started < 30
    assert last.reply["status"] == "error" and last.reply["ename"] == "RuntimeError"
    text = _ANSI.sub("", "\n".join(last.error["traceback"] if last.error else []))
    assert "modified by an inplace operation" in text and "time limit of 1 s" in text
    assert (
        kernel.execute("print(calls, t.tolist(), t._version, w.grad)").text()
        == "[1] [1.0, 1.0, 1.0] 1 None\n"
    )


def test_gradcheck_on_derives_the_limit_from_the_first_run_in_a_kernel(
    kernel: Kernel, tmp_path: Path
) -> None:
    _hanging_session(kernel, tmp_path / "mark")
    # the floor (30 s) lowered so that the test is short; the limit is then max(floor, 10 x first run)
    kernel.execute("import inplace_magic.replay.time_limit as limits\nlimits.FLOOR_S = 1.0")
    kernel.execute("%gradcheck on --no-fix")
    try:
        last = kernel.execute(HANGS_IN_REPLAY, "hangs-auto", timeout=60)
    finally:
        kernel.execute("%gradcheck off\nlimits.FLOOR_S = 30.0")
    text = _ANSI.sub("", "\n".join(last.error["traceback"] if last.error else []))
    # max(floor, 10 x the first run): the floor's 1 s, or more when a loaded machine slowed the first run
    # (a fast cell: under 1 s even then), never the default floor's 30 s
    limit = re.search(r"time limit of ([0-9.]+) s", text)
    assert limit is not None and 1.0 <= float(limit.group(1)) < 10.0, text
    assert kernel.execute("print(calls, t.tolist())").text() == "[1] [1.0, 1.0, 1.0]\n"


def _digest_in(kernel: Kernel, case: str, magic: str | None, seen: Path) -> tuple[dict[str, str], list[str]]:
    kernel.execute(
        f"%reset -f\nimport sys\nsys.path.insert(0, {str(NOTEBOOKS)!r})\n_seen_path = {str(seen)!r}"
    )
    for source in statecases.sources(case, magic):
        kernel.execute(source, f"{case}-cell")
    out = kernel.execute("import json, statehash\nprint(json.dumps(statehash.digest(get_ipython().user_ns)))")
    digest: dict[str, str] = json.loads(out.text())
    return {
        k: v for k, v in digest.items() if k not in ("json", "statehash", "sys")
    }, seen.read_text().splitlines()


def test_a_dataloader_iterator_in_a_kernel_gives_the_replay_the_same_batch_and_is_left_in_place(
    kernel: Kernel, tmp_path: Path
) -> None:
    plain, plain_seen = _digest_in(kernel, "dataloader_iterator", None, tmp_path / "plain")
    magic, magic_seen = _digest_in(kernel, "dataloader_iterator", "%%gradcheck --no-fix", tmp_path / "magic")
    assert "it (next items)" in plain
    assert {k for k in plain.keys() | magic.keys() if plain.get(k) != magic.get(k)} == set()
    assert magic_seen == plain_seen * 2  # the replay took the batch the first run took
