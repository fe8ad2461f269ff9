"""``%%gradcheck --audit`` against a real in-process IPython shell (issue 16, item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.testing import globalipapp

from inplace_magic.diagnose.silent import SILENT
from inplace_magic.record.recorder import ReplayStopped

SETUP = """
import torch
import torch.nn as nn
torch.manual_seed(0)
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
D = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, fused=True)
"""

GAN_STEP = """p_fake = D(G(torch.randn(32, 4)))
d_loss = torch.log(1 - p_fake).mean()
g_loss = -torch.log(p_fake).mean()
opt_d.zero_grad()
d_loss.backward(retain_graph=True)
opt_d.step()
g_loss.backward()
"""


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()  # once per process; later calls leave the shell as it is
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "inplace_magic")
    shell.run_cell(SETUP)
    yield shell
    shell.run_line_magic("unload_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")


def test_the_silent_gan_step_is_reported_under_the_cell(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    before = ip.user_ns["opt_d"].state_dict()["state"]
    ip.run_cell_magic("gradcheck", "--audit", GAN_STEP)
    out = capsys.readouterr().out
    assert f"Silent in-place hazard ({SILENT})" in out
    assert "aten._fused_adam_.default" in out and "opt_d.step()" in out
    assert "cell [" in out and "line 6" in out  # named as the notebook names the cell
    assert "SUGGESTED FIX (not verified, changes the training semantics): Recompute `p_fake`" in out
    # the cell's one run happened in the kernel: the optimizer stepped (once)
    assert before == {} and ip.user_ns["opt_d"].state_dict()["state"][0]["step"].item() == 1.0


def test_a_clean_cell_says_so(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell_magic(
        "gradcheck", "--audit", "w = torch.randn(3, requires_grad=True)\n(w * 2).sum().backward()\n"
    )
    assert "audit: no silent in-place write found" in capsys.readouterr().out
    assert ip.user_ns["w"].grad is not None


def test_a_detected_error_is_raised_with_a_note(ip: Any) -> None:
    body = "x = torch.randn(3, requires_grad=True)\ny = torch.sigmoid(x)\ny.mul_(2)\ny.sum().backward()\n"
    with pytest.raises(ReplayStopped) as raised:
        ip.run_cell_magic("gradcheck", "--audit", body)
    assert any("without --audit" in note for note in getattr(raised.value, "__notes__", []))
