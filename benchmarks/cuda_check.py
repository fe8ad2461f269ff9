"""One-minute check of the engine's version-counter assumptions on a CUDA device.

The engine notes measured on CPU only: in-place ``_foreach_*`` ops stop bumping versions under a
dispatch mode, and fused optimizers never bump. This script measures both on the device it runs on,
then runs the engine end to end on two CUDA scripts (a foreach-Adam GAN step and a pre-activation
residual) and compares the tracer's cost with anomaly mode. Usage: ``python benchmarks/cuda_check.py
[--device cuda]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from inplace_magic.pipeline.core import check_cells
from inplace_magic.record.recorder import Recorder
from inplace_magic.record.torch_facts import foreach_bumps_versions
from inplace_magic.replay.cells import split_percent


class _PassThrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))


def version_behaviour(device: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    a, b = torch.zeros(4, device=device), torch.zeros(4, device=device)
    torch._foreach_add_([a, b], 1.0)
    out["foreach_plain_bump"] = a._version
    a, b = torch.zeros(4, device=device), torch.zeros(4, device=device)
    with _PassThrough():
        torch._foreach_add_([a, b], 1.0)
    out["foreach_under_mode_bump"] = a._version
    for flag in ("foreach", "fused"):
        lin = torch.nn.Linear(4, 4, device=device)
        opt = torch.optim.Adam(lin.parameters(), **{flag: True})
        lin(torch.randn(2, 4, device=device)).sum().backward()
        before = lin.weight._version
        opt.step()
        out[f"adam_{flag}_step_bump"] = lin.weight._version - before
    out["self_test_says_bumps"] = foreach_bumps_versions(device.split(":")[0])
    return out


GAN = """
# %%
import torch, torch.nn as nn
torch.manual_seed(0)
dev = "{device}"
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8)).to(dev)
D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(dev)
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
# %%
fake = G(torch.randn(16, 4, device=dev))
d_fake = D(fake)
opt_d.zero_grad()
d_fake.mean().backward(retain_graph=True)
opt_d.step()
(-d_fake.mean()).backward()
"""

RESIDUAL = """
# %%
import torch, torch.nn as nn
torch.manual_seed(0)
dev = "{device}"
class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.shortcut = nn.Conv2d(ch, ch, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
    def forward(self, h):
        s = self.shortcut(h)
        return self.conv(self.act(h)) + s
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8)).to(dev)
# %%
model(torch.randn(2, 3, 16, 16, device=dev)).sum().backward()
"""


def engine_runs(device: str) -> dict[str, Any]:
    out = {}
    for name, source in (("gan_default_adam", GAN), ("preact_residual", RESIDUAL)):
        result = check_cells(split_percent(source.format(device=device).lstrip()), with_fixes=False)
        d = result.to_json()
        out[name] = {
            "status": d["status"],
            "reproduced": d.get("reproduced"),
            "writer": (d["inplace"] or {}).get("op"),
            "writer_line": (d["inplace"] or {}).get("line"),
            "optimizer": (d["inplace"] or {}).get("optimizer"),
            "saver": (d["saved_by"] or {}).get("op"),
            "skip_merge_line": ((d["skip"] or {}).get("merge") or {}).get("line"),
            # a double or missing bump would show as replay versions that differ from the plain run's
            "plain_versions": re.findall(
                r"is at version (\d+); expected version (\d+)", d["error"]["message"]
            ),
            "replay_versions": [(d["tensor"] or {}).get("version"), (d["tensor"] or {}).get("saved_version")],
        }
    return out


def overhead(device: str, repeats: int = 15) -> dict[str, float]:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [torch.nn.Conv2d(3, 16, 3, padding=1)]
    for _ in range(8):
        layers += [torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1)]
    model = torch.nn.Sequential(*layers).to(device)
    x = torch.randn(8, 3, 32, 32, device=device)

    def step() -> None:
        model(x).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(context: Any) -> float:
        start = time.perf_counter()
        with context():
            step()
        return time.perf_counter() - start

    configs = {
        "plain": _Null,
        "anomaly": lambda: torch.autograd.detect_anomaly(check_nan=False),
        "recorder": Recorder,
    }
    for make in configs.values():
        timed(make)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(repeats):
        for key, make in configs.items():
            times[key].append(timed(make))
    plain = statistics.median(times["plain"])
    return {k: round(statistics.median(v) / plain, 2) for k, v in times.items()} | {"plain_ms": plain * 1e3}


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = parser.parse_args().device
    report = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "versions": version_behaviour(device),
        "engine": engine_runs(device),
        "overhead_vs_plain": overhead(device),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
