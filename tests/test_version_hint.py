"""The kernel's recording without a first pass: the message's shape and versions (a hint) say which
saved tensor to follow, the recorder stops recording once it is written and settled, and backward
verifies that it reads that one stale. Where backward reads another, the recording is made again
without the hint: the diagnosis is always the replay's records', never the message's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import shells
import torch

import inplace_magic
from inplace_magic.pipeline import core
from inplace_magic.pipeline import kernel as cellreplay
from inplace_magic.record.family import VersionHint, version_hint

_MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        (
            f"{_MODIFIED}: [torch.FloatTensor [1, 4, 4, 4]], which is output 0 of ReluBackward0, is at "
            "version 1; expected version 0 instead. Hint: enable anomaly detection",
            VersionHint((1, 4, 4, 4), 0, 1),
        ),
        (  # a saved leaf: no "output K of" clause
            f"{_MODIFIED}: [torch.FloatTensor [64, 109]] is at version 2; expected version 1 instead.",
            VersionHint((64, 109), 1, 2),
        ),
        (
            f"{_MODIFIED}: [torch.cuda.HalfTensor []], which is output 0 of torch::autograd::CopySlices, "
            "is at version 3; expected version 0 instead.",
            VersionHint((), 0, 3),
        ),
        ("a leaf Variable that requires grad is being used in an in-place operation.", None),
    ],
)
def test_the_hint_is_the_messages_shape_and_versions(message: str, hint: VersionHint | None) -> None:
    assert version_hint(RuntimeError(message)) == hint


def _same_but_cells(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same diagnosis, but for the In[] numbers the two runs' cells got."""
    keys = ("headline", "inplace", "saved_by", "tensor", "skip", "explanation")
    return all(
        _cells.sub("", json.dumps(a[k], sort_keys=True)) == _cells.sub("", json.dumps(b[k], sort_keys=True))
        for k in keys
    )


_cells = re.compile(r"cell \[\d+\]|\"cell\": \d+|In\[\d+\]|<ipython-input-\d+-")


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    yield from shells.with_the_extension()  # tests/shells.py


BLOCK = """
import torch
class Block(torch.nn.Module):
    def forward(self, x):
        y = x.sigmoid()
        y.mul_(2)  # a [4] saved at version 0, written to 1, inside the block: the hint's first fit
        return y
block = Block()
"""

# backward reads z stale first (exp's node runs before sigmoid's): z was saved after the block
# returned, where the hinted recording no longer records
FAILING = """%%gradcheck --no-fix
a = torch.ones(4, requires_grad=True)
y = block(a * 2)
z = (a * 3).exp()
z.add_(1)
(y + z).sum().backward()
"""


def _diagnosed(ip: Any, monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, Any]:
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    ip.run_cell(BLOCK, store_history=True)
    result = ip.run_cell(FAILING, store_history=True)
    assert isinstance(result.error_in_exec, RuntimeError)
    assert "output 0 of Exp," in str(result.error_in_exec)
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None and diagnosis["reproduced"]
    return diagnosis


def test_backward_reading_another_save_stale_voids_the_hinted_recording(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hinted = _diagnosed(ip)
    sites = hinted["inplace"]["op"], hinted["saved_by"]["op"]
    assert sites == ("aten.add_.Tensor", "aten.exp.default")
    assert hinted["executions"]["replay"] == 2  # the hinted recording, then one without the hint
    monkeypatch.setattr(core, "version_hint", lambda error: None)
    plain = _diagnosed(ip)
    assert plain["executions"]["replay"] == 1
    assert _same_but_cells(hinted, plain)


def test_a_verified_hint_records_less_and_diagnoses_the_same(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders: list[Any] = []
    original = core.recorder_for

    def kept(*args: Any, **kwargs: Any) -> Any:
        recorders.append(original(*args, **kwargs))
        return recorders[-1]

    def diagnosis(hinted: bool) -> dict[str, Any]:
        ip.run_line_magic("reset", "-f")
        cellreplay._LATEST = None
        ip.run_cell(BLOCK.replace("x.sigmoid()", "x.sigmoid()  # the only [4] written"), store_history=True)
        cell = "%%gradcheck --no-fix\na = torch.ones(4, requires_grad=True)\ny = block(a * 2)\n"
        cell += "for _ in range(20):\n    y = y * 1.5\n(y * 2).sum().backward()\n"
        result = ip.run_cell(cell, store_history=True)
        assert isinstance(result.error_in_exec, RuntimeError)
        found = inplace_magic.last_diagnosis()
        assert found is not None and found["executions"]["replay"] == 1
        return found

    monkeypatch.setattr(core, "recorder_for", kept)
    hinted = diagnosis(True)
    monkeypatch.setattr(core, "version_hint", lambda error: None)
    plain = diagnosis(False)
    hinted_ops, plain_ops = (len(recorder.trace.ops) for recorder in recorders)
    assert hinted_ops < plain_ops - 15  # the 20 multiplications after the block were not recorded
    assert _same_but_cells(hinted, plain)
    assert torch.is_grad_enabled()
