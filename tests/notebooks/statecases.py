"""Notebooks whose failing cell reads a stream (an iterator, a random generator object) or writes
state the undo log cannot see (``.data``, containers past any size or depth): each run in a fresh
IPython shell, plainly or with ``%%gradcheck`` on the failing cell, and digested by
:mod:`statehash`.

Every failing cell also draws from the global random generators and writes what it took from the
stream to a file (``_seen_path``, a side effect no replay undoes): the file shows what the replay saw.

Run as a program (``python statecases.py plain|magic OUT.json [CASE ...]``) so that each mode
gets its own process: a fresh shell per case, nothing shared with the test process.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

SEED = "import random, numpy, torch\nrandom.seed(0); numpy.random.seed(0); torch.manual_seed(0)"

# the failing part of every case: ``x`` (3 floats) comes from the stream; then an in-place error
FAIL = """\
seen.append(x)
with open(_seen_path, "a") as f:
    f.write(repr([round(float(v), 6) for v in x]) + "\\n")
noise = torch.rand(1).item() + numpy.random.rand() + random.random()
w = torch.ones(3, requires_grad=True)
y = (w * x).sigmoid()
y.mul_(2)
y.sum().backward()
"""

COMMON = "import torch\nw0 = torch.ones(3, requires_grad=True)\nseen = []"

CASES: dict[str, tuple[list[str], str]] = {
    # (cells before, the failing cell's first lines: FAIL follows)
    "list_iterator": (
        ["batches = [torch.randn(3) for _ in range(5)]\nit = iter(batches)"],
        "x = next(it)",
    ),
    "range_iterator_in_a_function": (
        ["steps = iter(range(10))\ndef next_x():\n    return torch.full((3,), float(next(steps)))"],
        "x = next_x()",
    ),
    "dataloader_iterator": (
        [
            "from torch.utils.data import DataLoader, TensorDataset\n"
            "loader = DataLoader(TensorDataset(torch.randn(12, 3)), batch_size=2, shuffle=True)\n"
            "it = iter(loader)"
        ],
        "(batch,) = next(it)\nx = batch[0]",
    ),
    "numpy_default_rng": (
        ["rng = numpy.random.default_rng(0)"],
        "x = torch.tensor(rng.normal(size=3), dtype=torch.float32)",
    ),
    "torch_generator": (
        ["g = torch.Generator().manual_seed(0)"],
        "x = torch.randn(3, generator=g)",
    ),
    "random_Random": (
        ["r = random.Random(0)"],
        "x = torch.tensor([r.random() for _ in range(3)])",
    ),
    "generator_in_a_dataset_attribute": (
        [
            "class Noisy:\n    def __init__(self):\n        self.rng = numpy.random.default_rng(1)\n"
            "ds = Noisy()"
        ],
        "x = torch.tensor(ds.rng.normal(size=3), dtype=torch.float32)",
    ),
    "data_assignment_ema": (
        [
            "enc_q = torch.nn.Linear(3, 3)\nenc_k = torch.nn.Linear(3, 3)\n"
            "for p in enc_k.parameters():\n    p.requires_grad = False"
        ],
        "for p_q, p_k in zip(enc_q.parameters(), enc_k.parameters()):\n"
        "    p_k.data = p_k.data * 0.9 + p_q.data * 0.1\n"
        "x = enc_k.weight.detach().sum(0)",
    ),
    "large_and_deep_containers": (
        [
            "history = list(range(20_000))\nlookup = {i: [i] for i in range(20_000)}\n"
            "cfg = {'a': {'b': {'c': {'d': {'e': {'f': {'g': []}}}}}}}"
        ],
        "history.append(len(history))\nlookup[7].append(0)\ncfg['a']['b']['c']['d']['e']['f']['g'].append(1)\n"
        "x = torch.full((3,), float(len(history)))",
    ),
    "generator_refused": (
        [
            "def batches():\n    i = 0\n    while True:\n        i += 1\n"
            "        yield torch.full((3,), float(i))\ngen = batches()"
        ],
        "x = next(gen)",
    ),
}

IMPORTS = "import random, numpy, torch"


def sources(case: str, magic: str | None) -> list[str]:
    before, failing = CASES[case]
    last = f"{IMPORTS}\n{failing}\n{FAIL}"
    return [SEED, COMMON, *before, f"{magic}\n{last}" if magic else last]


def run(case: str, magic: str | None, seen_path: str) -> dict[str, Any]:
    """The case in a fresh shell: the digest, what each run of the failing cell took, the notes."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from statehash import digest  # type: ignore[import-not-found]  # run with its own folder on sys.path
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    if magic:
        shell.run_line_magic("load_ext", "inplace_magic")
    shell.user_ns["_seen_path"] = seen_path
    result = None
    for source in sources(case, magic):
        with capture_output():
            result = shell.run_cell(source, store_history=True)
    assert result is not None
    error = result.error_in_exec
    import inplace_magic

    diagnosis = inplace_magic.last_diagnosis() if magic else None
    out = {
        "error": f"{type(error).__name__}: {error}",
        "notes": list(getattr(error, "__notes__", [])),
        "writer": ((diagnosis or {}).get("inplace") or {}).get("code"),
        "diagnosis_notes": (diagnosis or {}).get("notes", []),
        "fix_verified": bool(((diagnosis or {}).get("fixes") or [{}])[0].get("verified")),
        "seen": Path(seen_path).read_text().splitlines(),
        "state": digest(shell.user_ns),
    }
    if magic:
        shell.run_line_magic("unload_ext", "inplace_magic")
    return out


def main(argv: list[str]) -> None:
    mode, target, *chosen = argv
    magic = None if mode == "plain" else mode
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in chosen or list(CASES):
            seen = os.path.join(folder, f"{case}.seen")
            results[case] = run(case, magic, seen)
    Path(target).write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
