"""torch.distributed across a replay: which rank this process is, a channel between the ranks that
outlives the user's process group, and a fresh process group for the replay.

A rank's replay re-runs its cells in a fresh namespace, so the user's ``init_process_group`` runs a
second time and would fail ("trying to initialize the default process group twice"). During the
replay :func:`replay_groups` makes that call build a *new* default group, on a store prefix of its
own and with a time limit on every collective: each rank replays in lockstep with the others, and
a collective that a peer never joins fails after the limit instead of hanging. When some rank
cannot take part (it exited, or it is blocked in its first run on a collective that a failed rank
never joined) a failing rank replays alone, in a world of one.

A rank destroys its groups after its run and after its replay (:func:`release_groups`). That frees
a peer blocked in a collective with it only once nothing holds the group any more; a DDP model
built on it keeps it alive until the process exits (measured on torch 2.13, gloo), which is why a
blocked peer is not waited for.

The ranks talk through the launcher's TCPStore (torchrun's agent, or ``inplace-magic check
--nproc``'s parent), under a prefix of their own: that store lives as long as the launch, whatever
the user's code does to its process groups, and the launcher marks there a rank that exited.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist
from torch.distributed import TCPStore  # type: ignore[attr-defined]  # re-exported from torch._C
from torch.distributed.distributed_c10d import PrefixStore, Store

from ..record.frames import is_user_file
from .time_limit import limit_for

RANK_TIMEOUT_ENV = "INPLACE_MAGIC_RANK_TIMEOUT"  # seconds; overrides the derived limit (tests, slow clusters)
LAUNCHER_ENV = "INPLACE_MAGIC_LAUNCHER"  # set by ``--nproc`` for its ranks
STORE_PREFIX = "inplace_magic/"
_POLL_S = 0.05


@dataclass(frozen=True)
class World:
    """This process's place in a launch, read from the variables torchrun (and ``--nproc``) set."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int
    agent_store: bool  # the launcher hosts the TCPStore at MASTER_ADDR:MASTER_PORT
    run_id: str
    launcher: str  # "torchrun" or "inplace-magic --nproc", for the report

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World | None:
        """None unless this process is one rank of a launch (RANK, WORLD_SIZE, MASTER_ADDR/PORT set)."""
        env = os.environ if environ is None else environ
        needed = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
        if not all(env.get(name) for name in needed):
            return None
        try:
            rank, world_size, port = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["MASTER_PORT"])
            local_rank = int(env.get("LOCAL_RANK", rank))
            local_world_size = int(env.get("LOCAL_WORLD_SIZE", world_size))
        except ValueError:
            return None
        return cls(
            rank=rank,
            world_size=world_size,
            local_rank=local_rank,
            local_world_size=local_world_size,
            master_addr=env["MASTER_ADDR"],
            master_port=port,
            agent_store=env.get("TORCHELASTIC_USE_AGENT_STORE") == "True",
            run_id=f"{env.get('TORCHELASTIC_RUN_ID', 'run')}.{env.get('TORCHELASTIC_RESTART_COUNT', '0')}",
            launcher="inplace-magic --nproc" if env.get(LAUNCHER_ENV) else "torchrun",
        )

    @property
    def all_local(self) -> bool:
        """Every rank runs on this machine (so a fix can be re-run under the same launch here)."""
        return self.local_world_size == self.world_size


def rank_timeout(first_run_s: float | None, time_limit_s: float | None = None) -> float:
    """How long a rank waits for the others, and the limit on each collective of a replay:
    ``INPLACE_MAGIC_RANK_TIMEOUT``, else the replay's own limit (``--time-limit``, or derived)."""
    configured = os.environ.get(RANK_TIMEOUT_ENV)
    return limit_for(first_run_s, float(configured) if configured else time_limit_s)


@dataclass(frozen=True)
class Missing:
    """A rank whose answer did not come: why, in words."""

    reason: str


class RankChannel:
    """Key-value exchange between the ranks of one launch, on the launcher's store.

    Each stage (``first``, ``final``, ...) has one key per rank holding a JSON object; the launcher
    writes ``gone/<rank>`` when a rank exits, so the others stop waiting for it at once.
    """

    def __init__(self, store: Store, world_size: int, rank: int | None) -> None:
        self.store = store
        self.world_size = world_size
        self.rank = rank  # None for the launcher, which answers for no rank

    @classmethod
    def prefix(cls, run_id: str) -> str:
        return f"{STORE_PREFIX}{run_id}/"

    @classmethod
    def connect(cls, world: World, timeout_s: float = 60.0) -> RankChannel:
        timeout = datetime.timedelta(seconds=timeout_s)
        if world.agent_store:
            raw = TCPStore(world.master_addr, world.master_port, None, False, timeout=timeout)
        else:
            # no agent store (a launcher with another rendezvous): rank 0 hosts, as env:// does;
            # multi_tenant lets the user's own init_process_group share the same server
            raw = TCPStore(
                world.master_addr,
                world.master_port,
                None,
                world.rank == 0,
                timeout=timeout,
                wait_for_workers=False,
                multi_tenant=True,
            )
        return cls(PrefixStore(cls.prefix(world.run_id), raw), world.world_size, world.rank)

    def put(self, key: str, payload: Mapping[str, Any]) -> None:
        self.store.set(key, json.dumps(payload, default=str))

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload at ``key``, or None while nobody has set it."""
        if not self.store.check([key]):
            return None
        value = json.loads(self.store.get(key))
        return value if isinstance(value, dict) else None

    def decide(self, key: str, proposal: Mapping[str, Any]) -> dict[str, Any]:
        """The first proposal any rank made for ``key``: every rank acts on the same decision, even
        when their views differ (one rank's wait for a peer timed out, another's did not)."""
        agreed = json.loads(self.store.compare_set(key, "", json.dumps(proposal, default=str)))
        return agreed if isinstance(agreed, dict) else dict(proposal)

    def publish(self, stage: str, payload: Mapping[str, Any]) -> None:
        """This rank's answer for ``stage``."""
        assert self.rank is not None
        self.put(f"{stage}/{self.rank}", payload)

    def gather(
        self, stage: str, timeout_s: float, skip: set[int] | None = None
    ) -> dict[int, dict[str, Any] | Missing]:
        """Every rank's ``stage`` payload (but the ranks in ``skip``), or :class:`Missing` for a rank
        that exited or did not answer within ``timeout_s``."""
        answers: dict[int, dict[str, Any] | Missing] = {}
        wanted = [r for r in range(self.world_size) if r not in (skip or set())]
        deadline = time.monotonic() + timeout_s
        while True:
            for rank in wanted:
                if rank in answers:
                    continue
                value = self.get(f"{stage}/{rank}")
                if value is not None:
                    answers[rank] = value
                    continue
                gone = self.get(f"gone/{rank}")
                if gone is not None:
                    code = gone.get("code")
                    answers[rank] = Missing(f"rank {rank} exited (code {code}) before it answered")
            if len(answers) == len(wanted):
                return answers
            if time.monotonic() >= deadline:
                for rank in wanted:
                    why = f"rank {rank} did not answer within {timeout_s:g} s (it exited, or is blocked in "
                    answers.setdefault(rank, Missing(why + "a collective that a failed rank never joins)"))
                return answers
            time.sleep(_POLL_S)


def freeze_what_is_loaded() -> None:
    """Leave every object alive now (torch's modules, this package's) out of the rank's later garbage
    collections: :func:`release_groups` collects after the run and after the replay, and each full
    collection walks every tracked object. Measured on torch 2.13 with DDP's own import of
    ``torch._dynamo`` loaded: 0.12 CPU-s a collection, 0.03 once torch and this package are frozen
    (the sandbox's fork server freezes its imports for the same reason). Called before the user's
    code runs, after a collection, so no garbage is frozen with them: what the user's code makes
    (the models and the DDP reducer that hold a process group) is collected as before.
    """
    gc.collect()
    gc.freeze()


def release_groups() -> None:
    """Destroy this rank's process groups, so that peers blocked in a collective with it fail at once.

    Destroying only unregisters a group: its sockets close when the last reference goes (measured:
    a peer waits out its timeout while a DDP model still holds the group, and fails at once when
    it is freed). The callers drop the run's namespace first; the collection frees the cycles
    (modules, DDP's reducer) that still hold the group. ``ProcessGroup.abort()`` does not close a
    gloo group's sockets on torch 2.13.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    gc.collect()


@contextlib.contextmanager
def _patched(names: dict[str, Any]) -> Iterator[None]:
    """Replace functions of torch.distributed for the block. Both modules: a cell's
    ``dist.init_process_group`` and ``from torch.distributed import ...`` read torch.distributed's
    attribute, code that imports from distributed_c10d reads that one."""
    modules = (dist, dist.distributed_c10d)
    saved = [(module, name, getattr(module, name)) for module in modules for name in names]
    for module in modules:
        for name, function in names.items():
            setattr(module, name, function)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _as_launched(world: World) -> dict[str, Any]:
    """``get_rank``/``get_world_size`` that answer the user's code as in the launch, and torch's own
    code as in the world of one that stands in for it."""
    real_rank, real_size = dist.get_rank, dist.get_world_size

    def from_user() -> bool:
        return is_user_file(sys._getframe(2).f_code.co_filename)

    def get_rank(group: Any = None) -> int:
        return world.rank if group is None and from_user() else int(real_rank(group))

    def get_world_size(group: Any = None) -> int:
        return world.world_size if group is None and from_user() else int(real_size(group))

    return {"get_rank": get_rank, "get_world_size": get_world_size}


@contextlib.contextmanager
def replay_groups(
    world: World, channel: RankChannel, attempt: str, timeout_s: float, *, alone: bool = False
) -> Iterator[None]:
    """While the replay runs, ``init_process_group`` builds a fresh default group on the channel.

    The group has this rank's place in the launch, the user's backend and options, and
    ``timeout_s`` on every collective. With ``alone`` (some rank cannot replay: it exited, or it
    is blocked in a collective of its first run) the group is a world of one, and the user's code
    still gets its rank and world size from ``get_rank``/``get_world_size``: the replay runs, its
    collectives just do not communicate. The group is destroyed when the replay ends.
    """
    real = dist.init_process_group
    calls = iter(range(1 << 30))

    def init_process_group(
        backend: str | None = None,
        init_method: str | None = None,
        timeout: datetime.timedelta | None = None,
        world_size: int = -1,
        rank: int = -1,
        store: Store | None = None,
        **options: Any,
    ) -> None:
        release_groups()  # the first run's group, or the one an earlier call of this replay made
        if alone:
            fresh = PrefixStore(f"alone/{attempt}/{world.rank}/{next(calls)}/", channel.store)
            rank, world_size = 0, 1
        else:
            fresh = PrefixStore(f"replay/{attempt}/{next(calls)}/", channel.store)
            rank = world.rank if rank < 0 else rank
            world_size = world.world_size if world_size < 0 else world_size
        real(
            backend=backend,
            store=fresh,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
            **options,
        )

    names: dict[str, Any] = {"init_process_group": init_process_group}
    if alone:
        names |= _as_launched(world)
    try:
        with _patched(names):
            yield
    finally:
        release_groups()
