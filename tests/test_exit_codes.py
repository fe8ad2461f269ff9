"""The CLI's contract, whatever the user's code does: exit 0-3, the user's own error with their frames only,
stdout one JSON object under --json, and the re-executions counted truthfully.

The tests whose subject is the process run the real command in a subprocess (the console script, or
``python -m inplace_magic``), with real signals: the entry points themselves, ``os._exit`` and a crash in
C (only the watching process can report those), Ctrl-C, the time limits that kill, the sandbox process
ending, output to fd 1 kept out of the JSON, ``sys.argv`` and the working folder as ``python`` gives
them, and the compile-time RecursionError (deep in the interpreter's own stack). The others check how
an outcome is classified and printed (``sys.exit``, a KeyboardInterrupt the code raises itself, an
exception whose ``str`` raises, a syntax error, a BOM, the replay-only text): the same check, the same
report, in this process (``check_here``: :func:`inplace_magic.cli.main`, the function the command's
child runs), which spares two interpreter start-ups and a torch import each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(sys.executable).parent
COMMANDS = {"console": [str(SCRIPTS / "inplace-magic")], "module": [sys.executable, "-m", "inplace_magic"]}
CONSOLE = COMMANDS["console"]
OURS = (os.sep + "inplace_magic" + os.sep, str(SCRIPTS / "inplace-magic"))

LEAF_ERROR = "import torch\nw = torch.ones(2, requires_grad=True)\nw += 1\n"
VERSION_ERROR = (
    "# %%\nimport torch\nx = torch.randn(3, requires_grad=True)\n"
    "y = x.sigmoid()\ny += 1\ny.sum().backward()\n"
)
LEAF_MESSAGE = "RuntimeError: a leaf Variable that requires grad is being used in an in-place operation.\n"


def _run(*args: str, command: list[str] = CONSOLE, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def check_here(run_cli):  # type: ignore[no-untyped-def]
    """The check in this process, answered like :func:`_run` (exit code, stdout, stderr)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code, out, err = run_cli(*args)
        return subprocess.CompletedProcess(["inplace-magic", *args], code, out, err)

    return run


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout must be exactly one JSON object, nothing before or after it."""
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _none_of_ours(*texts: str) -> None:
    for text in texts:
        for mark in OURS:
            assert mark not in text, f"{mark!r} leaked into:\n{text}"


def _line(script: Path, code: str) -> int:
    """The line of ``code`` within its cell (cells start after a ``# %%`` line)."""
    lines = script.read_text().split("\n")
    found = next(i for i, line in enumerate(lines) if line.strip() == code)
    start = max(i for i in range(found) if lines[i].startswith("# %%"))
    return found - start


def _script(tmp_path: Path, body: str, name: str = "case.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_in_place_error_at_module_level_names_no_frame_of_ours(tmp_path: Path, command: list[str]) -> None:
    script = _script(
        tmp_path,
        "# %%\nimport torch\nx = torch.randn(3, requires_grad=True)\ny = x.sigmoid()\n"
        "y += 1\ny.sum().backward()\n",
    )
    done = _run("check", str(script), "--json", "--no-fix", command=command)
    got = _json(done)
    assert done.returncode == 1 and got["kind"] == "version_counter"
    assert (got["inplace"]["cell"], got["inplace"]["line"]) == (0, 4)
    # the callers of a module-level op stop at the cell: no console-script or package frame
    assert all("file" not in site for site in got["inplace"].get("stack", []))
    assert got["traceback"].startswith('Traceback (most recent call last):\n  File "<cell 0>", line 5')
    _none_of_ours(done.stdout, done.stderr)


def test_keyboard_interrupt_raised_by_the_code_is_another_exception(tmp_path: Path, check_here) -> None:
    script = _script(tmp_path, "# %%\ndef stop():\n    raise KeyboardInterrupt\nstop()\n")
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["status"] == "other_error"
    assert got["error"]["type"] == "KeyboardInterrupt" and (got["error"]["cell"], got["error"]["line"]) == (
        0,
        2,
    )
    assert done.stderr.endswith(
        '  File "<cell 0>", line 2, in stop\n    raise KeyboardInterrupt\nKeyboardInterrupt\n'
    )
    _none_of_ours(done.stdout, done.stderr)


def test_sys_exit_zero_finishes_the_run(tmp_path: Path, check_here) -> None:
    after = tmp_path / "after-exit"
    script = _script(tmp_path, f"# %%\nimport sys\nsys.exit(0)\n# %%\nopen({str(after)!r}, 'w').close()\n")
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 0 and got["status"] == "ok" and not after.exists()
    assert any("sys.exit(0) at cell 0, line 2" in note for note in got["notes"])
    none = _script(tmp_path, "# %%\nimport sys\nsys.exit()\n", "none.py")
    assert check_here("check", str(none)).returncode == 0


def test_sys_exit_with_a_code_is_another_error(tmp_path: Path, check_here) -> None:
    script = _script(tmp_path, "# %%\nimport sys\nsys.exit(3)\n")
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["error"]["type"] == "SystemExit" and got["error"]["message"] == "3"
    assert done.stderr.endswith("SystemExit: 3\n")
    _none_of_ours(done.stdout, done.stderr)


def test_a_text_only_the_replay_could_make_ours_stays_another_error(tmp_path: Path, check_here) -> None:
    # "appears to not have been used in the graph" is ours only when the replay shows set_() behind it
    script = _script(
        tmp_path,
        "# %%\nimport torch\nx = torch.ones(2, requires_grad=True)\ny = torch.ones(2, requires_grad=True)\n"
        "torch.autograd.grad((x * 2).sum(), [x, y])\n",
    )
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["status"] == "other_error" and got["member"] is None
    assert got["executions"] == {"run": 1, "replay": 1, "fix_verification": 0, "total": 2}  # it was replayed
    assert "appears to not have been used in the graph" in done.stderr.splitlines()[-1]
    _none_of_ours(done.stdout, done.stderr)


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "text"])
def test_os_exit_is_reported_as_the_end_of_the_process(tmp_path: Path, json_output: bool) -> None:
    script = _script(tmp_path, "# %%\nx = 1\n# %%\nimport os\nos._exit(7)\n")
    done = _run("check", str(script), *(["--json"] if json_output else []))
    assert done.returncode == 2
    if json_output:
        error = _json(done)["error"]
        assert error["type"] == "ProcessEnd" and error["cell"] == 1
        assert "exit status 7" in error["message"]
    else:
        assert "exit status 7 (os._exit" in done.stderr and "cell 1" in done.stderr


def test_a_crash_in_c_code_is_reported(tmp_path: Path) -> None:
    script = _script(tmp_path, "# %%\nimport ctypes\nctypes.string_at(0)\n")
    done = _run("check", str(script), "--json")
    error = _json(done)["error"]
    assert done.returncode == 2 and "SIGSEGV" in error["message"] and error["cell"] == 0


def test_os_exit_during_the_replay_still_shows_the_original_error(tmp_path: Path) -> None:
    marker = tmp_path / "ran-once"
    script = _script(
        tmp_path,
        f"# %%\nimport os\nif os.path.exists({str(marker)!r}):\n    os._exit(9)\n"
        f"open({str(marker)!r}, 'w').close()\n{LEAF_ERROR}",
    )
    done = _run("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 1 and got["kind"] == "leaf_inplace"
    assert got["error"]["line"] == _line(script, "w += 1")
    assert any("replay ended the process with exit status 9" in note for note in got["notes"])
    assert "w += 1\nRuntimeError: a leaf Variable" in done.stderr


def test_an_exception_whose_str_raises(tmp_path: Path, check_here) -> None:
    script = _script(
        tmp_path,
        "# %%\nclass Odd(RuntimeError):\n    def __str__(self):\n        raise ValueError('no')\n"
        "raise Odd()\n",
    )
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["error"]["type"] == "Odd"
    assert got["error"]["message"] == "<exception str() failed>" and got["error"]["line"] == 4
    assert done.stderr.endswith("Odd: <exception str() failed>\n")
    _none_of_ours(done.stdout, done.stderr)


def test_a_recursion_error_while_compiling(tmp_path: Path) -> None:
    script = _script(tmp_path, "# %%\nx = 1\n# %%\ny = " + "+".join(["1"] * 100_000) + "\n")
    done = _run("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["error"]["type"] == "RecursionError" and got["error"]["cell"] == 1
    assert done.stderr == "RecursionError: maximum recursion depth exceeded during compilation\n"
    _none_of_ours(done.stdout, done.stderr)


def test_a_syntax_error_carries_its_cell_and_line(tmp_path: Path, check_here) -> None:
    script = _script(tmp_path, "# %%\nx = 1\n# %%\ny = 2\ndef broken(:\n    pass\n")
    done = check_here("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 2 and got["error"]["type"] == "SyntaxError"
    assert (got["error"]["cell"], got["error"]["line"]) == (1, 2)
    assert done.stderr.startswith('  File "<cell 1>", line 2\n    def broken(:\n')
    _none_of_ours(done.stdout, done.stderr)


def test_output_to_fd_1_does_not_reach_the_json(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "# %%\nimport ctypes, os, subprocess, sys\n"
        "os.write(1, b'os.write {\\n')\n"
        "ctypes.CDLL(None).printf(b'printf without a newline {')\n"
        "subprocess.run(['echo', 'a child process {'])\n"
        "sys.__stdout__.write('sys.__stdout__ {')\n"
        "print('print {')\n" + LEAF_ERROR,
    )
    done = _run("check", str(script), "--json", "--no-fix")
    got = _json(done)
    assert done.returncode == 1 and got["kind"] == "leaf_inplace"
    assert done.stdout.lstrip().startswith("{") and done.stdout.rstrip().endswith("}")
    for mark in (
        "os.write {",
        "printf without a newline {",
        "a child process {",
        "sys.__stdout__ {",
        "print {",
    ):
        assert mark in done.stderr


def test_the_code_sees_argv_as_under_python_and_every_run_is_counted(tmp_path: Path, check_here) -> None:
    log = tmp_path / "runs.jsonl"
    script = _script(
        tmp_path,
        f"# %%\nimport json, sys\nwith open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv) + '\\n')\n" + VERSION_ERROR,
    )
    done = _run("check", str(script), "--json", "--no-fix")
    # one replay: the failed run's graph says which saved tensor went stale (no first pass)
    assert _json(done)["executions"] == {"run": 1, "replay": 1, "fix_verification": 0, "total": 2}
    assert log.read_text().splitlines() == [json.dumps([str(script)])] * 2
    log.unlink()
    done = _run("check", str(script), "--json")
    got = _json(done)
    runs = log.read_text().splitlines()
    assert got["fixes"][0]["verified"] and got["executions"]["fix_verification"] >= 3
    assert got["executions"]["total"] == len(runs) and set(runs) == {json.dumps([str(script)])}
    # the text report's count, from the same check in this process (the processes are shown above)
    text = check_here("check", str(script)).stdout
    assert f"Your code ran {len(runs)} times: once as given, once more under the recorder" in text


def test_bom_and_coding_line(tmp_path: Path, check_here) -> None:
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf# %%\nprint('bom', 1 + 1)\n")
    done = check_here("check", str(bom))
    assert done.returncode == 0 and "bom 2" in done.stdout
    latin = tmp_path / "latin.py"
    latin.write_bytes("# -*- coding: latin-1 -*-\n# %%\nprint('caf\xe9'.upper())\n".encode("latin-1"))
    done = check_here("check", str(latin))
    assert done.returncode == 0 and "CAFÉ" in done.stdout


def test_a_bad_command_line_is_unusable_input(tmp_path: Path) -> None:
    assert _run("check").returncode == 3
    script = _script(tmp_path, "# %%\nx = 1\n")
    done = _run("check", str(script), "--time-limit", "0")
    assert done.returncode == 3 and "--time-limit" in done.stderr


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)


def _replay_loops(tmp_path: Path, swallow: bool = False) -> tuple[Path, Path]:
    """A cell that fails at once in the user's run and loops forever in the replay."""
    marker, replaying = tmp_path / "ran-once", tmp_path / "replaying"
    sleep = "        try:\n            time.sleep(0.05)\n        except BaseException:\n            pass\n"
    script = _script(
        tmp_path,
        f"# %%\nimport os, time\nif os.path.exists({str(marker)!r}):\n"
        f"    open({str(replaying)!r}, 'w').close()\n    while True:\n"
        + (sleep if swallow else "        time.sleep(0.05)\n")
        + f"open({str(marker)!r}, 'w').close()\n{LEAF_ERROR}",
    )
    return script, replaying


@pytest.mark.parametrize("to_group", [False, True], ids=["to-the-command", "like-a-terminal"])
def test_ctrl_c_during_the_replay_still_shows_the_original_error(tmp_path: Path, to_group: bool) -> None:
    script, replaying = _replay_loops(tmp_path)
    process = subprocess.Popen(
        [*CONSOLE, "check", str(script), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches the whole group
    )
    _wait_for(replaying, process)
    if to_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    got = json.loads(out)
    assert process.returncode == 1 and got["kind"] == "leaf_inplace"
    assert got["error"]["line"] == _line(script, "w += 1")
    assert any("interrupted (Ctrl-C)" in note for note in got["notes"])
    assert err.endswith("    w += 1\n" + LEAF_MESSAGE)
    _none_of_ours(out, err)


def test_ctrl_c_during_the_users_own_run_is_their_keyboard_interrupt(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = _script(
        tmp_path,
        f"# %%\nimport time\nopen({str(started)!r}, 'w').close()\nwhile True:\n    time.sleep(0.05)\n",
    )
    process = subprocess.Popen(
        [*CONSOLE, "check", str(script), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(started, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    got = json.loads(out)
    assert process.returncode == 2 and got["error"]["type"] == "KeyboardInterrupt"
    assert got["error"]["line"] == _line(script, "time.sleep(0.05)")
    _none_of_ours(out, err)


def test_a_replay_that_never_ends_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    script, _ = _replay_loops(tmp_path)
    started = time.monotonic()
    done = _run("check", str(script), "--json", "--time-limit", "2")
    got = _json(done)
    assert done.returncode == 1 and got["kind"] == "leaf_inplace"
    assert got["error"]["line"] == _line(script, "w += 1")
    assert any("time limit of 2 s (as set)" in note for note in got["notes"])
    assert "w += 1\nRuntimeError: a leaf Variable" in done.stderr
    assert time.monotonic() - started < 60


def test_a_replay_that_swallows_the_time_limit_is_killed_and_the_error_still_shown(tmp_path: Path) -> None:
    script, _ = _replay_loops(tmp_path, swallow=True)
    started = time.monotonic()
    done = _run("check", str(script), "--json", "--time-limit", "2")
    got = _json(done)
    assert done.returncode == 1 and got["kind"] == "leaf_inplace"
    assert got["error"]["line"] == _line(script, "w += 1")
    assert any("did not end within its time limit and was killed" in note for note in got["notes"])
    assert "w += 1\nRuntimeError: a leaf Variable" in done.stderr
    assert time.monotonic() - started < 80


def test_fix_verification_that_never_ends_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    # the user's run and the replay end at once; every run after them (the sandbox's) loops forever
    log = tmp_path / "runs"
    script = _script(
        tmp_path,
        f"# %%\nimport time\nwith open({str(log)!r}, 'a') as f:\n    f.write('run\\n')\n"
        f"if len(open({str(log)!r}).read().split()) > 2:\n    while True:\n        time.sleep(0.05)\n"
        + VERSION_ERROR,
    )
    started = time.monotonic()
    done = _run("check", str(script), "--json", "--time-limit", "2")
    got = _json(done)
    assert done.returncode == 1 and got["inplace"]["line"] == 4 and got["fixes"]
    assert not any(fix["verified"] for fix in got["fixes"])
    assert all("original code ran past the time limit" in " ".join(fix["notes"]) for fix in got["fixes"])
    assert got["executions"]["total"] == len(log.read_text().split()) == 3
    assert time.monotonic() - started < 60


def test_code_that_ends_the_sandbox_process_is_said_to_have_done_so(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    script = _script(
        tmp_path,
        f"# %%\nimport os\nwith open({str(log)!r}, 'a') as f:\n    f.write('run\\n')\n"
        f"if len(open({str(log)!r}).read().split()) > 2:\n    os._exit(5)\n" + VERSION_ERROR,
    )
    done = _run("check", str(script), "--json")
    got = _json(done)
    assert done.returncode == 1 and got["inplace"]["line"] == 4 and got["fixes"]
    assert all("ended the sandbox process (exit status 5)" in " ".join(fix["notes"]) for fix in got["fixes"])
    assert got["executions"]["total"] == len(log.read_text().split()) == 3


def test_each_run_starts_in_the_folder_the_command_started_in(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.txt").write_text("x")
    script = _script(
        tmp_path, "# %%\nimport os\nos.chdir('sub')\nassert open('data.txt').read() == 'x'\n" + VERSION_ERROR
    )
    done = subprocess.run(
        [*CONSOLE, "check", "case.py", "--json", "--no-fix"], capture_output=True, text=True, cwd=tmp_path
    )
    got = _json(done)
    assert done.returncode == 1 and got["reproduced"] and got["saved_by"]["line"] == 3
    assert script.exists()
