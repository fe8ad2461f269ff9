"""``%%gradcheck`` and ``%gradcheck on|off`` against a real in-process IPython shell.

Every shared case runs twice in the same shell: plainly, and with ``%%gradcheck`` on its last cell.
The magic must give the CLI's diagnosis (located through cell ids), and leave every tensor
reachable from the namespace exactly as the plain failing run left it. Every negative must pass
through unchanged.
"""

from __future__ import annotations

import _thread
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import shells
from conftest import negative_cases, positive_cases
from IPython.utils.capture import capture_output
from notebooks.casebook import (
    cell_id,
    cells_of,
    cli_location,
    plain_traceback,
    score,
    scored_locations,
    seed_everything,
    sources_with_magic,
    state_hash,
)

import inplace_magic
from inplace_magic.pipeline import kernel as cellreplay
from inplace_magic.pipeline.core import check_cells
from inplace_magic.present.html import MIME_TYPE
from inplace_magic.replay import time_limit, undo

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    yield from shells.with_the_extension()  # tests/shells.py


@dataclass
class Run:
    result: Any  # the last cell's ExecutionResult
    stdout: str
    stderr: str
    outputs: list[Any]
    diagnosis: dict[str, Any] | None
    state: dict[str, str]


def run(ip: Any, case: Path, sources: list[str]) -> Run:
    """A fresh namespace, then ``sources`` as cells with the case's cell ids."""
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    seed_everything()  # not every case seeds itself, and both runs must see the same numbers
    stdout = stderr = ""
    outputs: list[Any] = []
    result = None
    sys.path.insert(0, str(case.parent))  # as a kernel started beside the notebook: siblings import
    try:
        for index, source in enumerate(sources):
            with capture_output() as captured:
                result = ip.run_cell(source, store_history=True, cell_id=cell_id(case, index))
            stdout, stderr, outputs = captured.stdout, captured.stderr, captured.outputs
    finally:
        sys.path.remove(str(case.parent))
    return Run(result, stdout, stderr, outputs, inplace_magic.last_diagnosis(), state_hash(ip.user_ns))


class _CaseRuns(dict[Path, tuple[Run, Run]]):
    """(plain, magic) for a case, run on first use (each xdist worker runs only its own cases)."""

    def __init__(self, ip: Any) -> None:
        super().__init__()
        self.ip = ip

    def __missing__(self, case: Path) -> tuple[Run, Run]:
        plain = run(self.ip, case, [c.source for c in cells_of(case)])
        magic = run(self.ip, case, sources_with_magic(case, "%%gradcheck --no-fix"))
        self[case] = (plain, magic)
        return plain, magic


@pytest.fixture(scope="module")
def case_runs(ip: Any) -> dict[Path, tuple[Run, Run]]:
    """(plain, magic) for each case, computed once for the tests that read them."""
    return _CaseRuns(ip)


CASES = pytest.mark.parametrize("case", positive_cases(), ids=lambda p: p.stem)


@CASES
def test_case_is_diagnosed_in_the_right_cells(case: Path, case_runs: dict[Path, tuple[Run, Run]]) -> None:
    magic = case_runs[case][1]
    assert score(magic.diagnosis, case) == []
    assert magic.diagnosis is not None and magic.diagnosis["inplace"]["code"]  # locations carry the code text


@CASES
def test_case_diagnosis_equals_the_cli(case: Path, case_runs: dict[Path, tuple[Run, Run]]) -> None:
    cli = check_cells(cells_of(case), str(case), with_fixes=False).to_json()  # its siblings import
    magic = case_runs[case][1].diagnosis
    assert magic is not None
    assert magic["kind"] == cli["kind"]
    for key in ("inplace", "saved_by"):
        if cli[key] is None:
            assert magic[key] is None
            continue
        # the CLI numbers cells by position; the magic by In[], so compare through cell ids
        assert cli_location(cli[key]) in scored_locations(magic[key], case), key
        assert magic[key]["op"] == cli[key]["op"]
    cli_merge = (cli.get("skip") or {}).get("merge")
    if cli_merge:
        merge = (magic.get("skip") or {}).get("merge")
        assert cli_location(cli_merge) in scored_locations(merge, case)


@CASES
def test_replay_leaves_every_reachable_tensor_as_the_plain_run_left_it(
    case: Path, case_runs: dict[Path, tuple[Run, Run]]
) -> None:
    plain, magic = case_runs[case]
    assert plain.state, "the namespace holds tensors"
    differing = {
        k for k in plain.state.keys() | magic.state.keys() if plain.state.get(k) != magic.state.get(k)
    }
    assert differing == set()


@CASES
def test_original_exception_is_raised_with_a_note(case: Path, case_runs: dict[Path, tuple[Run, Run]]) -> None:
    plain, magic = case_runs[case]
    error, original = magic.result.error_in_exec, plain.result.error_in_exec
    assert type(error) is type(original) and str(error) == str(original)
    assert any("replaying the cell" in note for note in error.__notes__)
    assert "Traceback" in magic.stdout and "replaying the cell" in magic.stdout  # the note is shown
    assert [MIME_TYPE in output.data for output in magic.outputs] == [True]  # the report, once


@pytest.mark.parametrize("case", negative_cases(), ids=lambda p: p.stem)
def test_negative_passes_through_unchanged(ip: Any, case: Path) -> None:
    plain = run(ip, case, [c.source for c in cells_of(case)])
    magic = run(ip, case, sources_with_magic(case))
    if magic.stderr != plain.stderr:
        # torch warns some things once per process (TORCH_WARN_ONCE): compare with a second plain run
        plain = run(ip, case, [c.source for c in cells_of(case)])
    assert magic.diagnosis is None
    assert magic.result.success == plain.result.success
    assert type(magic.result.error_in_exec) is type(plain.result.error_in_exec)
    assert str(magic.result.error_in_exec) == str(plain.result.error_in_exec)
    assert plain_traceback(magic.stdout) == plain_traceback(plain.stdout)
    assert magic.stderr == plain.stderr
    assert magic.state == plain.state


def _cell(ip: Any, source: str, cell: str = "cell") -> tuple[Any, Any]:
    with capture_output() as captured:
        result = ip.run_cell(source, store_history=True, cell_id=cell)
    return result, captured


def test_cell_runs_exactly_as_ipython_would(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    count = ip.execution_count
    result, captured = _cell(ip, "%%gradcheck\nx = 21\nprint('side effect')\nx * 2")
    assert result.success and result.result == 42
    assert ip.user_ns["_"] == 42 and ip.user_ns["Out"][count] == 42  # displayed as Out[count]
    assert captured.stdout == f"side effect\nOut[{count}]: 42\n"
    assert ip.execution_count == count + 1
    assert ip.history_manager.input_hist_raw[count].startswith("%%gradcheck")


def test_errors_keep_their_traceback_and_cell_line(ip: Any) -> None:
    result, captured = _cell(ip, "%%gradcheck\n\nundefined_name + 1")
    assert isinstance(result.error_in_exec, NameError)
    assert captured.stdout.count("Traceback") == 1  # shown once, not again by the outer cell
    # line 3 of the cell as the user sees it, in the cell's own In[] number
    assert f"Cell In[{result.execution_count}], line 3" in _ANSI.sub("", captured.stdout)
    result, captured = _cell(ip, "%%gradcheck\nx = (")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert captured.stdout.count("SyntaxError") == 1


def test_help_says_the_cell_is_replayed_and_what_is_restored(ip: Any) -> None:
    doc = ip.find_cell_magic("gradcheck").__doc__
    for words in (
        "REPLAYED",
        "executed a second time",
        "Restored afterwards",
        "NOT undone",
        "files",
        "--no-replay",
        # how many times code runs again, truthfully: the replay and its widenings, fix verification
        "the failing cell once",
        "at most twice more, at most 8 cells each time",
        "runs at most 3 more times",
        "rarely a replay runs its cells a second time",
        "the note counts every run",
        "the best fix costs at most two re-executions",
        "--no-verify",
        # what it does not replay, and what bounds it
        "NOT replayed unless you allow it (--allow-advance)",
        "time limit (--time-limit)",
        "%%time, %%capture",
    ):
        assert words in " ".join(doc.split())
    assert ip.find_line_magic("gradcheck").__doc__ == doc


FAILING_CELL = """\
calls.append(1)
t.add_(1)
w = torch.ones(3, requires_grad=True)
y = (w * 2).sigmoid()
y.mul_(2)
y.sum().backward()
"""


def test_no_replay_runs_the_cell_once_and_still_names_the_kind(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    result, _ = _cell(ip, "%%gradcheck --no-replay\n" + FAILING_CELL, "failing")
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["kind"] == "version_counter"
    assert diagnosis["inplace"] is None and not diagnosis["reproduced"]
    assert diagnosis["error"]["line"] == 7  # loss.backward() in the cell as the user sees it
    assert ip.user_ns["calls"] == [1]
    assert "not replayed" in " ".join(result.error_in_exec.__notes__)


def test_replay_restores_names_containers_tensors_and_grads(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    _cell(ip, "%%gradcheck --no-fix\n" + FAILING_CELL, "failing")
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["inplace"]["code"] == "y.mul_(2)"
    assert diagnosis["inplace"]["cell_id"] == "failing" and diagnosis["inplace"]["line"] == 6
    ns = ip.user_ns
    assert ns["calls"] == [1]  # the replay's append was undone
    assert ns["t"].tolist() == [1.0, 1.0, 1.0] and ns["t"]._version == 1  # one add_, not two
    assert ns["w"].grad is None


def test_gradcheck_on_diagnoses_any_failing_cell_after_its_traceback(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    ip.run_line_magic("gradcheck", "on --no-fix")
    try:
        result, captured = _cell(ip, FAILING_CELL, "auto")
        diagnosis = inplace_magic.last_diagnosis()
        assert diagnosis is not None and diagnosis["inplace"]["cell_id"] == "auto"
        assert "Traceback" in captured.stdout and "replaying the cell" in captured.stdout
        assert [MIME_TYPE in output.data for output in captured.outputs] == [True]
        assert ip.user_ns["calls"] == [1]
        cellreplay._LATEST = None
        result, captured = _cell(ip, "1 / 0")
        assert isinstance(result.error_in_exec, ZeroDivisionError) and inplace_magic.last_diagnosis() is None
    finally:
        ip.run_line_magic("gradcheck", "off")
    cellreplay._LATEST = None
    _cell(ip, FAILING_CELL)
    assert inplace_magic.last_diagnosis() is None


def test_an_error_of_ours_is_reported_as_ours_and_the_users_error_is_kept(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    # a module that breaks nn.Module's contract makes our analysis fail (it walks a model that walks
    # its own way through the model's own named_modules)
    _cell(
        ip,
        "import torch\ncalls = []\nt = torch.zeros(3)\nclass Odd(torch.nn.Module):\n"
        "    def named_modules(self, *args, **kwargs):\n        raise ValueError('odd')\nodd = Odd()",
    )
    result, captured = _cell(ip, "%%gradcheck --no-fix\n" + FAILING_CELL)
    assert "modified by an inplace operation" in str(result.error_in_exec)
    assert "internal error, ValueError: odd" in captured.stderr
    assert ip.user_ns["calls"] == [1]


SLOW_FAILING_CELL = "import time\nt.add_(1)\ntime.sleep(1.6)\n" + FAILING_CELL


def test_a_long_replay_shows_progress(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    _, captured = _cell(ip, "%%gradcheck --no-fix\n" + SLOW_FAILING_CELL)
    assert "inplace_magic: replaying In[" in captured.stderr and "done after" in captured.stderr
    assert inplace_magic.last_diagnosis() is not None


def test_ctrl_c_stops_the_replay_and_restores_state(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    cellreplay._LATEST = None
    # the first run sleeps 1.6 s; the interrupt lands in the replay's sleep
    timer = threading.Timer(2.4, _thread.interrupt_main)
    timer.start()
    try:
        result, _ = _cell(ip, "%%gradcheck --no-fix\n" + SLOW_FAILING_CELL)
    finally:
        timer.cancel()
    assert "modified by an inplace operation" in str(result.error_in_exec)
    assert any("interrupted" in note for note in result.error_in_exec.__notes__)
    assert ip.user_ns["t"].tolist() == [2.0, 2.0, 2.0]  # the failed run's two add_, not the replay's
    assert ip.user_ns["calls"] == [1]


# ---------------------------------------------------------------------------------------------- time limit

# the first run leaves a marker file (a side effect no replay undoes); the replay sees it and hangs
HANGS_IN_REPLAY = (
    "import os, time\nif os.path.exists(MARK):\n    while True:\n"
    "        time.sleep(0.05)\nopen(MARK, 'w').close()\n"
)


@pytest.fixture
def hanging(ip: Any, tmp_path: Path) -> Iterator[None]:
    """A session for HANGS_IN_REPLAY; Ctrl-C after 20 s so that a replay without a limit fails the
    test instead of hanging the suite."""
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    ip.user_ns["MARK"] = str(tmp_path / "mark")
    cellreplay._LATEST = None
    timer = threading.Timer(20.0, _thread.interrupt_main)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _stopped_by_the_limit(ip: Any, result: Any, seconds: str) -> None:
    error = result.error_in_exec
    assert "modified by an inplace operation" in str(error)  # the user's own error
    (note,) = [n for n in error.__notes__ if n.startswith("inplace_magic")]
    assert f"time limit of {seconds} s" in note and "kernel state was restored" in note
    assert ip.user_ns["calls"] == [1] and ip.user_ns["t"].tolist() == [1.0, 1.0, 1.0]
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["kind"] == "version_counter" and not diagnosis["reproduced"]


def test_a_replay_past_its_time_limit_is_stopped_and_the_users_error_shown(ip: Any, hanging: None) -> None:
    started = time.monotonic()
    result, captured = _cell(ip, "%%gradcheck --no-fix --time-limit 0.5\n" + HANGS_IN_REPLAY + FAILING_CELL)
    assert time.monotonic() - started < 10
    _stopped_by_the_limit(ip, result, "0.5")
    assert "Traceback" in captured.stdout and "time limit of 0.5 s" in captured.stdout


def test_the_time_limit_is_derived_from_the_cells_first_run(
    ip: Any, hanging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ten times the first run, at least the floor: the floor (30 s) lowered, the first run made to
    # take 0.2 s, so the limit is about 2 s
    monkeypatch.setattr(time_limit, "FLOOR_S", 0.5)
    result, _ = _cell(
        ip, "%%gradcheck --no-fix\nimport time\ntime.sleep(0.2)\n" + HANGS_IN_REPLAY + FAILING_CELL
    )
    note = result.error_in_exec.__notes__[0]
    seconds = float(re.search(r"time limit of ([0-9.]+) s", note).group(1))  # type: ignore[union-attr]
    # at least ten times the 0.2 s sleep; more when a loaded machine slows the run (under 1 s even then)
    assert 2.0 <= seconds < 10.0, note
    monkeypatch.setattr(time_limit, "FLOOR_S", 1.0)  # a fast first run gets the floor
    ip.user_ns["t"].zero_()
    ip.user_ns["calls"].clear()
    Path(ip.user_ns["MARK"]).unlink()
    result, _ = _cell(ip, "%%gradcheck --no-fix\n" + HANGS_IN_REPLAY + FAILING_CELL)
    _stopped_by_the_limit(ip, result, "1")


def test_a_snapshot_past_its_object_limit_is_said_in_the_note(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)\nmany = [[i] for i in range(50)]")
    monkeypatch.setattr(undo, "MAX_OBJECTS", 20)
    # the snapshot walks what the replayed cell reaches: this one reads ``many``
    result, _ = _cell(ip, "%%gradcheck --no-fix\nmany.append([50])\n" + FAILING_CELL)
    assert "changes the replay made past them were not undone" in result.error_in_exec.__notes__[0]


def test_gradcheck_on_takes_a_time_limit_too(ip: Any, hanging: None) -> None:
    ip.run_line_magic("gradcheck", "on --no-fix --time-limit 0.5")
    try:
        result, _ = _cell(ip, HANGS_IN_REPLAY + FAILING_CELL)
    finally:
        ip.run_line_magic("gradcheck", "off")
    _stopped_by_the_limit(ip, result, "0.5")


# ---------------------------------------------------------------------------------------------- counts


def test_the_note_says_how_many_times_code_was_re_executed(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    result, _ = _cell(ip, "%%gradcheck --no-fix\n" + FAILING_CELL)
    (note,) = result.error_in_exec.__notes__
    assert f"re-executed once: In[{result.execution_count}];" in note

    # forward in one cell, backward in the next: the replay is widened to both, a second re-execution
    ip.run_line_magic("reset", "-f")
    forward, _ = _cell(
        ip, "import torch\nw = torch.ones(3, requires_grad=True)\ny = (w * 2).sigmoid()\ny.mul_(2)", "fw"
    )
    result, _ = _cell(ip, "%%gradcheck --no-fix\ny.sum().backward()", "bw")
    (note,) = result.error_in_exec.__notes__
    first, last = forward.execution_count, result.execution_count
    assert f"re-executed twice: In[{last}]; In[{first}] to In[{last}];" in note
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["inplace"]["cell_id"] == "fw"


def test_a_replay_is_not_widened_through_a_cell_that_failed_when_it_ran(ip: Any) -> None:
    # the usual notebook: the cell fails, then runs again under %%gradcheck. Widened to find where the
    # modules were built, a replay from the setup cell raised the plain run's error first and told
    # nothing; it is not run (the modules' own cell is still found where no failed cell is between)
    setup = "import torch\nlin = torch.nn.Linear(3, 3)\nact = torch.nn.Sigmoid()\nx = torch.randn(2, 3)"
    failing = "y = act(lin(x))\ny.mul_(2)\ny.sum().backward()"
    ip.run_line_magic("reset", "-f")
    first, _ = _cell(ip, setup)
    result, _ = _cell(ip, "%%gradcheck --no-fix\n" + failing)
    (note,) = result.error_in_exec.__notes__
    assert f"re-executed twice: In[{result.execution_count}]; In[{first.execution_count}] to " in note
    _cell(ip, setup)
    plain, _ = _cell(ip, failing)
    assert isinstance(plain.error_in_exec, RuntimeError)
    result, _ = _cell(ip, "%%gradcheck --no-fix\n" + failing)
    (note,) = result.error_in_exec.__notes__
    assert f"re-executed once: In[{result.execution_count}];" in note
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["saved_by"] is not None and diagnosis["inplace"] is not None


# ---------------------------------------------------------------------------------------------- streams


def test_a_generator_is_replayed_only_when_allowed_and_the_note_says_it_moved_on(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(
        ip,
        "import torch\ncalls = []\nt = torch.zeros(3)\ndef numbers():\n    yield from range(100)\n"
        "gen = numbers()",
    )
    cell = "x = next(gen)\n" + FAILING_CELL
    result, _ = _cell(ip, "%%gradcheck --no-fix\n" + cell)
    assert (
        "not replayed" in result.error_in_exec.__notes__[0]
        and "`gen` (a generator)" in result.error_in_exec.__notes__[0]
    )
    assert next(ip.user_ns["gen"]) == 1  # taken once, by the cell itself
    result, _ = _cell(ip, "%%gradcheck --no-fix --allow-advance\n" + cell)
    (note,) = result.error_in_exec.__notes__
    assert "diagnosed by replaying" in note and "moved on `gen` (a generator) (--allow-advance)" in note
    assert inplace_magic.last_diagnosis()["inplace"]["code"] == "y.mul_(2)"
    assert next(ip.user_ns["gen"]) == 4  # 2 by the cell, 3 by the replay the user allowed


def test_a_generator_called_through_a_function_of_the_notebook_is_found(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(
        ip,
        "import torch\ncalls = []\nt = torch.zeros(3)\ndef numbers():\n    yield from range(100)\n"
        "gen = numbers()\ndef next_batch():\n    return next(gen)",
    )
    result, _ = _cell(ip, "%%gradcheck --no-fix\nx = next_batch()\n" + FAILING_CELL)
    assert "`gen` (a generator)" in result.error_in_exec.__notes__[0]
    assert next(ip.user_ns["gen"]) == 1


# ---------------------------------------------------------------------------------------------- nested magics


def test_gradcheck_wraps_a_cell_that_starts_with_time(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    result, captured = _cell(ip, "%%gradcheck --no-fix\n%%time\n" + FAILING_CELL, "timed")
    assert "modified by an inplace operation" in str(result.error_in_exec)
    assert captured.stdout.count("CPU times") == 1  # %%time ran, and the replay's own print is hidden
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None
    # the cell as the user sees it: %%gradcheck, %%time, then FAILING_CELL from line 3
    assert (diagnosis["inplace"]["cell_id"], diagnosis["inplace"]["line"]) == ("timed", 7)
    assert diagnosis["inplace"]["code"] == "y.mul_(2)"
    assert ip.user_ns["calls"] == [1] and ip.user_ns["t"].tolist() == [1.0, 1.0, 1.0]


def test_gradcheck_wraps_a_cell_that_starts_with_capture(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ncalls = []\nt = torch.zeros(3)")
    result, captured = _cell(
        ip, "%%gradcheck --no-fix\n%%capture out\nprint('hidden')\n" + FAILING_CELL, "cap"
    )
    assert result.success  # %%capture keeps the error, as it does without %%gradcheck
    assert "hidden" in ip.user_ns["out"].stdout and "RuntimeError" in ip.user_ns["out"].stdout
    assert "hidden" not in captured.stdout
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and (diagnosis["inplace"]["cell_id"], diagnosis["inplace"]["line"]) == (
        "cap",
        8,
    )
    assert [MIME_TYPE in output.data for output in captured.outputs] == [True]  # the report
    assert ip.user_ns["calls"] == [1]


def test_gradcheck_hands_other_cell_magics_their_body_untouched(ip: Any, tmp_path: Path) -> None:
    target = tmp_path / "written.py"
    result, _ = _cell(ip, f"%%gradcheck\n%%writefile {target}\nx = 1\n")
    assert result.success and target.read_text() == "x = 1\n"


def test_a_wider_replay_that_would_move_a_generator_on_is_not_run(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    _cell(ip, "import torch\ndef numbers():\n    yield from range(1, 100)\ngen = numbers()")
    _cell(ip, "w = torch.ones(3, requires_grad=True)\ny = (w * next(gen)).sigmoid()\ny.mul_(2)", "fw")
    result, _ = _cell(ip, "%%gradcheck --no-fix\ny.sum().backward()", "bw")
    assert "re-executed once" in result.error_in_exec.__notes__[0]  # the backward cell alone
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None
    assert any("A wider replay" in n and "`gen` (a generator)" in n for n in diagnosis["notes"])
    assert next(ip.user_ns["gen"]) == 2  # taken once, by the forward cell
