"""What the magic and kernel tests share: the shared cases as cells and notebooks, scoring a
diagnosis the way ../shared/tools/score_cases.py scores the CLI, a hash of every tensor reachable
from a namespace, and tracebacks with their volatile parts (colours, In[] numbers) removed.

The state hash is written independently of ``inplace_magic.replay.undo`` on purpose: it is the oracle.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy
import torch

from inplace_magic.replay.cells import Cell, split_percent

MAGIC = "%%gradcheck"


def cells_of(case: Path) -> list[Cell]:
    return [c for c in split_percent(case.read_text()) if c.kind == "code"]


def expected_of(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(case.with_suffix(".json").read_text())
    return data


def cell_id(case: Path, index: int) -> str:
    # nbformat ids: 1-64 letters, digits, '-' and '_'
    return f"{case.stem[:40]}-{index}"


def sources_with_magic(case: Path, header: str = MAGIC) -> list[str]:
    """The case's cells, the last one under the magic (its lines move down by one)."""
    cells = [c.source for c in cells_of(case)]
    cells[-1] = f"{header}\n{cells[-1]}"
    return cells


def notebook_of(case: Path, sources: list[str], preamble: list[str]) -> nbformat.NotebookNode:
    """A notebook whose code cells are ``preamble`` then ``sources``; the case's cells get stable ids."""
    nb = nbformat.v4.new_notebook()
    for index, source in enumerate(preamble):
        nb.cells.append(nbformat.v4.new_code_cell(source, id=f"preamble-{index}"))
    for index, source in enumerate(sources):
        nb.cells.append(nbformat.v4.new_code_cell(source, id=cell_id(case, index)))
    return nb


# ---------------------------------------------------------------------------------------------- scoring


Where = tuple[int | str, int]  # (case cell index, line) or (file name, line) for imported code


def _expected_locations(expected: dict[str, Any]) -> set[Where]:
    items = [expected, *(expected.get("alt") or [])]
    return {
        (item["cell"] if "cell" in item else os.path.basename(item["file"]), item["line"]) for item in items
    }


def cli_location(site: dict[str, Any]) -> Where:
    return (site["cell"], site["line"]) if "cell" in site else (os.path.basename(site["file"]), site["line"])


def scored_locations(site: dict[str, Any] | None, case: Path) -> set[Where]:
    """(case cell index, line in the case file) of a site and of the line that built its module.

    The cell comes from the location's cell id (the magic numbers cells by In[]); the last cell's
    lines are one lower in the case file, which has no magic line.
    """
    n = len(cells_of(case))
    ids = {cell_id(case, i): i for i in range(n)}
    out: set[Where] = set()
    for where in (site or {}, (site or {}).get("defined_at") or {}):
        index = ids.get(where.get("cell_id", ""))
        if index is not None and "line" in where:
            out.add((index, where["line"] - (1 if index == n - 1 else 0)))
        elif "file" in where and "line" in where:
            out.add((os.path.basename(where["file"]), where["line"]))
    return out


def score(diagnosis: dict[str, Any] | None, case: Path) -> list[str]:
    expected = expected_of(case)
    if diagnosis is None:
        return ["no diagnosis"]
    problems = []
    checks = [("inplace", diagnosis.get("inplace"), expected["inplace"])]
    if expected.get("saved_by"):
        checks.append(("saved_by", diagnosis.get("saved_by"), expected["saved_by"]))
    merge = (expected.get("skip") or {}).get("merge")
    if merge:
        checks.append(("skip.merge", (diagnosis.get("skip") or {}).get("merge"), merge))
    if diagnosis["kind"] != expected["category"]:
        problems.append(f"kind {diagnosis['kind']!r} != {expected['category']!r}")
    for name, got, want in checks:
        if not scored_locations(got, case) & _expected_locations(want):
            problems.append(
                f"{name} at {sorted(scored_locations(got, case))}, want {sorted(_expected_locations(want))}"
            )
    return problems


# ---------------------------------------------------------------------------------------------- state


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)


def _digest(t: torch.Tensor) -> str:
    data = t.detach().cpu().contiguous()
    payload = data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""
    meta = f"{data.dtype}{list(data.shape)}{t.requires_grad}{t._version if not t.is_inference() else -1}"
    return hashlib.sha256(meta.encode() + payload).hexdigest()[:16]


def _walk(value: Any, path: str, depth: int, seen: set[int]) -> Iterator[tuple[str, torch.Tensor]]:
    if depth > 6 or id(value) in seen:
        return
    if isinstance(value, torch.Tensor):
        seen.add(id(value))
        yield path, value
        if value.is_leaf and value.grad is not None:
            yield f"{path}.grad", value.grad
        return
    if isinstance(value, (str, bytes, int, float, bool, type(None), type)) or (
        callable(value) and not hasattr(value, "__dict__")
    ):
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        for name, tensor in value.state_dict(keep_vars=True).items():
            yield from _walk(tensor, f"{path}.{name}", depth + 1, seen)
    if isinstance(value, torch.optim.Optimizer):
        for index, (param, state) in enumerate(value.state.items()):
            for key, tensor in state.items():
                yield from _walk(tensor, f"{path}.state[{index}].{key}", depth + 1, seen)
            yield from _walk(param, f"{path}.param[{index}]", depth + 1, seen)
        return
    if isinstance(value, dict):
        for key, item in list(value.items()):
            yield from _walk(item, f"{path}[{key!r}]", depth + 1, seen)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1, seen)
    elif hasattr(value, "__dict__") and type(value).__module__ not in ("builtins",):
        for key, item in list(vars(value).items()):
            yield from _walk(item, f"{path}.{key}", depth + 1, seen)


def state_hash(namespace: dict[str, Any]) -> dict[str, str]:
    """path -> digest (values, dtype, shape, requires_grad, version) of every reachable tensor."""
    out: dict[str, str] = {}
    seen: set[int] = set()
    for name in sorted(namespace):
        if name.startswith("_") or name in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        for path, tensor in _walk(namespace[name], name, 0, seen):
            out[path] = _digest(tensor)
    return out


# ---------------------------------------------------------------------------------------------- text

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_traceback(text: str) -> str:
    """A traceback without colours, In[] numbers, line numbers and temp-file names."""
    text = _ANSI.sub("", text)
    text = re.sub(r"(In|Out)\[\d+\]", r"\1[#]", text)
    text = re.sub(r"line \d+", "line #", text)
    # the gutter: "---> 12 code" / "     9 code" (its width follows the largest line number)
    text = re.sub(r"^\s*(-*>)?\s*\d+ ", lambda m: f"{m.group(1) or ''}# ", text, flags=re.MULTILINE)
    return text
