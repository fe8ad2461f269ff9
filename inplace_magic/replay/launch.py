"""Start N ranks on this machine the way torchrun does, and watch them.

Each rank gets torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT, TORCHELASTIC_RUN_ID) and, as under torchrun, the TCPStore lives in the launcher:
``TORCHELASTIC_USE_AGENT_STORE=True`` makes the user's ``init_process_group`` (env://) connect to
it instead of hosting it on rank 0. So the store outlives any rank, and when a rank exits the
launcher marks it ``gone`` there (:class:`~.process_group.RankChannel`), so the others stop
waiting for it at once instead of at their time limit.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from torch.distributed import TCPStore  # type: ignore[attr-defined]  # re-exported from torch._C
from torch.distributed.distributed_c10d import PrefixStore

from .process_group import LAUNCHER_ENV, RankChannel

_POLL_S = 0.05


@dataclass
class Exited:
    rank: int
    code: int


class LocalLaunch:
    """N processes of one command, one per rank, sharing a TCPStore hosted here."""

    def __init__(self, nproc: int, *, python_path: str | None = None, store_timeout_s: float = 300.0) -> None:
        if nproc < 1:
            raise ValueError(f"need at least one rank, got {nproc}")
        self.nproc = nproc
        self.python_path = python_path  # put first on the ranks' PYTHONPATH (this package, uninstalled)
        self.run_id = uuid.uuid4().hex[:12]
        # port 0: the OS picks a free port, no race with another launch picking the same one
        timeout = datetime.timedelta(seconds=store_timeout_s)
        self.server = TCPStore("127.0.0.1", 0, None, True, timeout=timeout, wait_for_workers=False)
        # the channel a rank's World reads (run id "." restart count)
        prefix = RankChannel.prefix(f"{self.run_id}.0")
        self.channel = RankChannel(PrefixStore(prefix, self.server), nproc, None)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.exit_order: list[int] = []  # ranks, in the order they were seen to exit

    def environment(self, rank: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            GROUP_RANK="0",
            ROLE_RANK=str(rank),
            WORLD_SIZE=str(self.nproc),
            LOCAL_WORLD_SIZE=str(self.nproc),
            ROLE_WORLD_SIZE=str(self.nproc),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(self.server.port),
            TORCHELASTIC_USE_AGENT_STORE="True",
            TORCHELASTIC_RUN_ID=self.run_id,
            TORCHELASTIC_RESTART_COUNT="0",
        )
        env[LAUNCHER_ENV] = "1"
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.python_path, env.get("PYTHONPATH")) if p)
        # as torchrun does: N ranks with a thread per core each would oversubscribe the machine
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def start(
        self,
        command: Sequence[str] | Callable[[int], Sequence[str]],
        *,
        cwd: str | None = None,
        stdout: Callable[[int], IO[bytes] | int | None] | None = None,
        stderr: Callable[[int], IO[bytes] | int | None] | None = None,
    ) -> None:
        """Start ``command`` once per rank (a callable gives each rank's own);
        ``stdout``/``stderr`` give each rank's streams (None: inherit)."""
        for rank in range(self.nproc):
            self.processes.append(
                subprocess.Popen(
                    list(command(rank) if callable(command) else command),
                    cwd=cwd,
                    env=self.environment(rank),
                    stdout=stdout(rank) if stdout else None,
                    stderr=stderr(rank) if stderr else None,
                )
            )

    def wait(
        self,
        *,
        finished: Callable[[], bool] | None = None,
        grace_s: float = 30.0,
        deadline_s: float | None = None,
    ) -> list[int]:
        """Wait for every rank; returns the exit codes (negative: killed by that signal).

        Once ``finished()`` is true (the report is out) the remaining ranks get ``grace_s`` to
        exit; past ``deadline_s`` (seconds from now) every rank still running is killed.
        """
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        codes: dict[int, int] = {}
        finished_at: float | None = None
        try:
            while len(codes) < self.nproc:
                for rank, process in enumerate(self.processes):
                    if rank not in codes and process.poll() is not None:
                        codes[rank] = process.returncode
                        self.exit_order.append(rank)
                        self._mark_gone(rank, process.returncode)
                now = time.monotonic()
                if finished_at is None and finished is not None and finished():
                    finished_at = now
                late = finished_at is not None and now - finished_at > grace_s
                if late or (deadline is not None and now > deadline):
                    self.kill()
                time.sleep(_POLL_S)
        except BaseException:  # Ctrl-C or our own failure: never leave ranks running behind us
            self.kill()
            raise
        return [codes[rank] for rank in range(self.nproc)]

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()

    def _mark_gone(self, rank: int, code: int) -> None:
        self.channel.put(f"gone/{rank}", {"code": code})
