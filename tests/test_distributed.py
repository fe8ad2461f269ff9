"""DDP on gloo (issue 16, item 2): real processes, real gloo, real torchrun.

Each check starts two ranks (``inplace-magic check --nproc 2`` or ``torchrun --nproc-per-node 2 -m
inplace_magic check``) on CPU; the cases are tiny and every run has a time limit, after which its
whole process group is killed, so a hang fails one test instead of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from inplace_magic.cli.ranks import without_nproc
from inplace_magic.replay.cells import split_percent
from inplace_magic.replay.process_group import RANK_TIMEOUT_ENV, World, rank_timeout

CASES = ROOT / "tests" / "cases" / "distributed"
TORCHRUN = Path(sys.executable).with_name("torchrun")
LIMIT_S = 300  # per launch: two ranks import torch and replay on a loaded 2-core machine


def _cases(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if p.with_suffix(".json").exists())


def _run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    """Run ``command`` in a session of its own; on timeout kill every process it started."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_PORT")}
    full_env.update(env or {})
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{command} ran past {LIMIT_S} s")
    return process.returncode, out, err, time.monotonic() - started


def check(path: Path, *options: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return _run(
        [sys.executable, "-m", "inplace_magic", "check", str(path), "--nproc", "2", *options], env=env
    )


def _locations(item: dict[str, Any]) -> set[tuple[int, int]]:
    return {(i["cell"], i["line"]) for i in [item, *(item.get("alt") or [])]}


def _got(site: dict[str, Any] | None) -> set[tuple[int, int]]:
    out = set()
    for item in [site or {}, (site or {}).get("defined_at") or {}]:
        if "cell" in item and "line" in item:
            out.add((item["cell"], item["line"]))
    return out


# -- the pieces, without processes


def test_world_is_read_from_torchrun_variables() -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "TORCHELASTIC_USE_AGENT_STORE": "True"}
    world = World.from_env(env)
    assert world is not None
    assert (world.rank, world.world_size, world.agent_store, world.all_local) == (1, 2, True, True)
    assert world.launcher == "torchrun"
    assert World.from_env({"RANK": "0", "WORLD_SIZE": "2"}) is None  # no rendezvous: not a launch
    assert World.from_env({}) is None


def test_the_rank_timeout_is_the_replays_time_limit_unless_set(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(RANK_TIMEOUT_ENV, raising=False)
    assert rank_timeout(1.0) == 30.0 and rank_timeout(5.0) == 50.0
    assert rank_timeout(5.0, 7.0) == 7.0  # --time-limit
    monkeypatch.setenv(RANK_TIMEOUT_ENV, "4")
    assert rank_timeout(5.0, 7.0) == 4.0


def test_each_rank_gets_the_command_line_without_nproc() -> None:
    argv = ["check", "a.py", "--nproc", "2", "--json", "--nproc=3", "--no-fix"]
    assert without_nproc(argv) == ["check", "a.py", "--json", "--no-fix"]


def test_nproc_is_refused_inside_a_launch_and_below_one(run_cli, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "s.py"
    script.write_text("# %%\nx = 1\n")
    code, out, err = run_cli("check", str(script), "--nproc", "0")
    assert (code, out) == (3, "") and "at least one rank" in err
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli("check", str(script), "--nproc", "2")
    assert code == 3 and "leave it out under torchrun" in err


# -- the cases, two ranks each


GAN = CASES / "ddp_gan_opt_d_step_before_g_backward.py"
Written = tuple[Path, str, int, dict[str, Any], str]  # the checked copy, its original, code, JSON, stderr


@pytest.fixture(scope="module")
def gan_written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """The GAN case checked with fixes and ``--write``, on a copy beside an older backup: one launch
    that both its diagnosis test and the fix test read. A check with fixes diagnoses every rank as
    one with ``--no-fix`` does (the fixes come after the ranks' reports are in); ``--no-fix`` itself
    is the other cases' launch."""
    case = tmp_path_factory.mktemp("gan") / "gan.py"
    original = GAN.read_text()
    case.write_text(original)
    (case.parent / "gan.py.bak").write_text("an older backup")  # never overwritten
    code, out, err, _ = check(case, "--json", "--write")
    return case, original, code, json.loads(out), err


def _assert_diagnosed_on_every_rank(case: Path, code: int, got: dict[str, Any], err: str) -> None:
    expected = json.loads(case.with_suffix(".json").read_text())
    assert (code, got["status"]) == (1, "inplace_error"), err[-3000:]
    assert got["world_size"] == 2 and got["failed_ranks"] == expected["failed_ranks"]
    assert got["kind"] == expected["category"]
    for rank in got["ranks"]:
        diagnosis = rank["diagnosis"]
        # the replay re-ran every rank in lockstep (before: "initialize the default process group twice")
        assert diagnosis["reproduced"], diagnosis["notes"]
        assert _got(diagnosis["inplace"]) & _locations(expected["inplace"]), diagnosis["inplace"]
        assert _got(diagnosis["saved_by"]) & _locations(expected["saved_by"]), diagnosis["saved_by"]
        per_rank = (expected.get("ranks") or {}).get(str(rank["rank"]))
        if per_rank:
            assert diagnosis["tensor"]["shape"] == per_rank["tensor_shape"]
            assert diagnosis["tensor"]["parameter"] == per_rank["parameter"]
    shapes = {json.dumps(r["tensor_shape"]) for r in (expected.get("ranks") or {}).values()}
    if len(shapes) > 1:  # the ranks fail on different tensors: the report says so
        assert got["ranks"][1]["same_as"] is None
        assert any(note.startswith("Rank 1 failed differently") for note in got["notes"]), got["notes"]
    if expected["inplace"]["writer"] == "ddp_construction_broadcast":
        assert "DistributedDataParallel" in got["inplace"]["role"]
        assert any("DDP's own machinery" in note for note in got["notes"])
    else:
        assert "role" not in got["inplace"]  # the user's op, named as in a single process


@pytest.mark.parametrize("case", [c for c in _cases(CASES) if c != GAN], ids=lambda p: p.stem)
def test_case_is_diagnosed_on_every_rank(case: Path) -> None:
    code, out, err, _ = check(case, "--json", "--no-fix")
    _assert_diagnosed_on_every_rank(case, code, json.loads(out), err)  # one JSON object for the launch


def test_the_gan_case_is_diagnosed_on_every_rank(gan_written: Written) -> None:
    _, _, code, got, err = gan_written
    _assert_diagnosed_on_every_rank(GAN, code, got, err)


@pytest.mark.parametrize("case", _cases(CASES / "negatives"), ids=lambda p: p.stem)
def test_healthy_ddp_script_is_ok_on_every_rank(case: Path) -> None:
    code, out, err, _ = check(case, "--json", "--no-fix")
    got = json.loads(out)
    assert (code, got["status"]) == (0, "ok"), err[-3000:]
    assert [r["status"] for r in got["ranks"]] == ["ok", "ok"]
    assert got["inplace"] is None and got["failed_ranks"] == []


def test_under_torchrun_one_report_comes_out() -> None:
    command = [str(TORCHRUN), "--nproc-per-node", "2", "-m", "inplace_magic", "check", str(GAN), "--no-fix"]
    code, out, err, _ = _run(command)
    assert code == 1, err[-3000:]  # torchrun's own code for a failed worker
    assert out.count("In-place autograd error: Saved tensor overwritten") == 1  # one report
    words = " ".join(out.split())  # the summary is wrapped at 100 columns
    assert "The in-place error was raised on ranks 0, 1; the report below is rank 0's." in words
    assert "rank 1: in-place error (version_counter) at cell 1, line 16: the same writer" in words
    assert "WRITTEN IN PLACE BY: aten.addcdiv_.default  (Adam.step() call #1)" in out
    assert "at       cell 1, line 13: opt_d.step()" in out
    assert "could not name it" not in out
    # only the reporting rank exited non-zero, after the other had exited: torchrun killed nobody
    assert "SIGTERM" not in err


# -- mixed outcomes across ranks


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_rank_that_did_not_fail_joins_the_replay(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """\
        # %%
        import os
        import torch
        import torch.distributed as dist
        import torch.nn as nn
        from torch.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        torch.manual_seed(0)
        model = DDP(nn.Linear(4, 4))
        print("a print on rank", rank)
        os.write(1, b"bytes on file descriptor 1\\n")

        # %%
        model(torch.randn(8, 4)).pow(2).mean().backward()

        # %%
        gate = torch.randn(5, requires_grad=True).sigmoid()
        if rank == 1:
            gate.mul_(2)
        gate.sum().backward()
        """,
    )
    code, out, err, _ = check(script, "--json", "--no-fix")
    got = json.loads(out)  # the only thing on stdout: each rank's output went to stderr, fd 1 included
    assert code == 1, err[-3000:]
    assert err.count("bytes on file descriptor 1") == 4 and err.count("a print on rank") == 4  # run + replay
    assert got["failed_ranks"] == [1] and got["reporter"] == 1
    # the reporter ran its code twice: as given, then under the recorder
    assert got["executions"] == {"run": 1, "replay": 1, "fix_verification": 0, "total": 2}
    rank0, rank1 = got["ranks"]
    # rank 0 ran to the end; it re-ran its cells so that rank 1's replay had DDP's collectives
    assert rank0["status"] == "ok" and rank0["replay"] == "re-ran its cells for the other ranks' replay"
    assert rank1["replay"] == "replayed under the recorder"
    assert rank1["diagnosis"]["reproduced"], rank1["diagnosis"]["notes"]
    assert (got["inplace"]["cell"], got["inplace"]["line"]) == (2, 3)
    assert (got["saved_by"]["cell"], got["saved_by"]["line"]) == (2, 1)


def test_a_rank_blocked_on_the_failed_rank_leaves_it_to_replay_alone(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """\
        # %%
        import torch
        import torch.distributed as dist
        import torch.nn as nn
        from torch.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        torch.manual_seed(0)
        model = DDP(nn.Linear(4, 4))

        # %%
        out = model(torch.randn(8, 4)).sigmoid()
        if rank == 1:
            out.mul_(2)
        out.sum().backward()
        """,
    )
    # rank 0 waits in DDP's gradient all-reduce for rank 1, which failed before joining it
    code, out, err, _ = check(script, "--json", "--no-fix", env={RANK_TIMEOUT_ENV: "6"})
    got = json.loads(out)
    assert code == 1, err[-3000:]
    assert got["failed_ranks"] == [1] and got["reporter"] == 1
    rank0, rank1 = got["ranks"]
    assert rank0["status"] == "missing" and "blocked in a collective" in rank0["reason"]
    assert rank1["replay"].startswith("replayed alone under the recorder")
    assert rank1["diagnosis"]["reproduced"], rank1["diagnosis"]["notes"]
    assert (got["inplace"]["cell"], got["inplace"]["line"]) == (1, 3)
    assert (got["saved_by"]["cell"], got["saved_by"]["line"]) == (1, 1)
    assert any(note.startswith("Rank 1 replayed alone: rank 0 did not answer") for note in got["notes"])


def test_a_rank_gone_is_said_plainly_without_waiting(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """\
        # %%
        import os
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank = dist.get_rank()

        # %%
        if rank == 1:
            os._exit(3)
        w = torch.ones(3, requires_grad=True)
        w += 1
        """,
    )
    code, out, err, seconds = check(script, "--json", "--no-fix", env={RANK_TIMEOUT_ENV: "120"})
    got = json.loads(out)
    assert code == 1, err[-3000:]
    assert got["failed_ranks"] == [0] and got["kind"] == "leaf_inplace"
    assert got["ranks"][1]["status"] == "missing"
    assert got["ranks"][1]["reason"] == "rank 1 exited (code 3) before it answered"
    # rank 1's supervising process said so on stderr, and kept its exit status for the launcher
    assert "inplace-magic (rank 1): the code ended the process with exit status 3" in err
    assert got["reproduced"] and (got["inplace"]["cell"], got["inplace"]["line"]) == (1, 4)
    assert any(note.startswith("Rank 0 replayed alone: rank 1 exited") for note in got["notes"])
    assert seconds < 120  # the launcher said rank 1 was gone: nobody waited out the limit


def test_a_replay_collective_nobody_joins_fails_at_the_time_limit(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        f"""\
        # %%
        import pathlib
        import time
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        marker = pathlib.Path({str(tmp_path)!r}) / f"ran{{rank}}"
        replaying = marker.exists()
        marker.touch()

        # %%
        if replaying and rank == 1:
            dist.all_reduce(torch.ones(1))
        if replaying and rank == 0:
            time.sleep(12)
        w = torch.ones(3, requires_grad=True)
        w += 1
        """,
    )
    code, out, err, _ = check(script, "--json", "--no-fix", env={RANK_TIMEOUT_ENV: "3"})
    got = json.loads(out)
    assert code == 1, err[-3000:]
    assert got["failed_ranks"] == [0, 1]
    rank1 = got["ranks"][1]["diagnosis"]
    # rank 1's replay made a collective rank 0 never joined: it failed after 3 s, not after 30 min
    assert not rank1["reproduced"]
    assert any("Timed out" in note for note in rank1["notes"]), rank1["notes"]
    assert got["ranks"][0]["diagnosis"]["reproduced"]


def test_when_no_rank_can_report_stdout_still_has_one_json_object(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """\
        # %%
        import os
        import torch.distributed as dist

        dist.init_process_group("gloo")
        os._exit(5)
        """,
    )
    code, out, err, _ = check(script, "--json", "--no-fix")
    got = json.loads(out)
    assert (code, got["status"]) == (2, "other_error"), err[-3000:]
    assert got["error"]["type"] == "RankLost" and got["reporter"] is None
    assert [r["reason"] for r in got["ranks"]] == [
        "rank 0 exited (code 5) before it answered",
        "rank 1 exited (code 5) before it answered",
    ]
    assert "inplace-magic: no rank printed a report" in err


def test_a_signal_to_the_command_reaches_every_rank_and_one_report_comes_out(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        f"""\
        # %%
        import pathlib
        import time
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank = dist.get_rank()

        # %%
        (pathlib.Path({str(tmp_path)!r}) / f"started{{rank}}").touch()
        while True:
            time.sleep(0.05)
        """,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_PORT")}
    process = subprocess.Popen(
        [sys.executable, "-m", "inplace_magic", "check", str(script), "--nproc", "2", "--json", "--no-fix"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + LIMIT_S
        while not all((tmp_path / f"started{r}").exists() for r in (0, 1)):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)  # as CI cancels a job: to the command, not to its group
        out, err = process.communicate(timeout=LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    got = json.loads(out)
    # the launcher passed it on to both ranks: each raised KeyboardInterrupt in the user's code
    assert (process.returncode, got["status"]) == (2, "other_error"), err[-3000:]
    assert [(r["status"], r["error"]["type"]) for r in got["ranks"]] == [
        ("other_error", "KeyboardInterrupt")
    ] * 2
    assert got["error"]["type"] == "KeyboardInterrupt" and got["error"]["cell"] == 1
    assert "KeyboardInterrupt" in got["traceback"] and err.count("Traceback (most recent call last)") == 1


# -- fixes, verified under the same launch


def test_fix_is_verified_by_rerunning_every_rank_and_written(gan_written: Written) -> None:
    case, original, code, got, err = gan_written
    tmp_path = case.parent
    assert code == 1, err[-3000:]
    best = got["fixes"][0]
    assert best["verified"] and best["kind"] == "reorder_step"
    assert "Verified under the same launch: 2 gloo ranks on this machine ran the fixed code." in best["notes"]
    assert best["preserves_gradients"] is None  # no gradient reference under a launch
    # only the reporting rank wrote, and only the fix verified under the launch, through the
    # backup-safe writer: a new backup beside the older one
    assert got["write"]["written"] and got["write"]["backup"] == str(tmp_path / "gan.py.bak.1")
    assert (tmp_path / "gan.py.bak.1").read_text() == original
    assert (tmp_path / "gan.py.bak").read_text() == "an older backup"
    assert got["executions"]["fix_verification"] == 1
    fixed = [c.source for c in split_percent(case.read_text())]
    assert fixed[1] == best["cells"]["1"] and fixed[1] != split_percent(original)[1].source


def test_a_fix_that_fails_on_one_rank_is_not_verified(tmp_path: Path) -> None:
    from inplace_magic.pipeline.distributed import _run_under_launch

    cells = split_percent(
        textwrap.dedent(
            """\
            # %%
            import torch.distributed as dist

            dist.init_process_group("gloo")
            if dist.get_rank() == 1:
                raise ValueError("only rank 1 fails")
            dist.barrier()
            """
        )
    )
    world = World.from_env({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    assert world is not None
    ok, note = _run_under_launch(cells, None, world, first_s=1.0)
    assert not ok
    assert note.startswith("Not verified: re-run as 2 ranks on this machine, the fixed code's rank 1 raised")
    assert "ValueError: only rank 1 fails (cell 0)" in note
