"""Fixes verified in the live kernel (``inplace_magic.fix.live``), in real IPython shells.

The default ``%%gradcheck`` re-executes the fixed cells here, in an overlay of the namespace and
under the replay's undo log: the skip connection's best fix is verified and gradient-preserving in
two replays, a fix that leaves the error is said not to help, an earlier failing cell or a long
history changes nothing, and the session is left exactly as a plain failing run leaves it. The kernel
face (the panel shown at once, updated in place) is ``test_kernel_verification.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shells
from IPython.utils.capture import capture_output
from notebooks.casebook import seed_everything
from notebooks.statehash import digest

import inplace_magic
from inplace_magic.pipeline import kernel as cellreplay

EXAMPLE = Path(__file__).parent.parent / "examples" / "resnet_skip_connection.py"
MODEL, SETUP, STEP = EXAMPLE.read_text().split("# %%\n")[1:]

# the fix of `b.mul_(2)` alone leaves `a += 1`, which breaks the same backward
TWO_WRITES = [
    "import torch\nx = torch.randn(4, requires_grad=True)",
    "a = x.exp()\na += 1\nb = a.sigmoid()\nb.mul_(2)\nb.sum().backward()",
]


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    yield from shells.with_the_extension()  # tests/shells.py


def _session(ip: Any, cells: list[str], last: str) -> tuple[Any, dict[str, Any]]:
    """A fresh namespace, ``cells`` run plainly, then ``last``: its result and the latest diagnosis."""
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    seed_everything()
    with capture_output():
        for source in cells:
            ip.run_cell(source, store_history=True)
        result = ip.run_cell(last, store_history=True)
    diagnosis = inplace_magic.last_diagnosis()
    assert diagnosis is not None
    return result, diagnosis


def _counting(path: Path, source: str) -> str:
    """``source`` with a line in front that appends to ``path``: how often the cell ran, in a file
    (a side effect no undo log sees)."""
    return f"with open({str(path)!r}, 'a') as _f:\n    _f.write('ran\\n')\n{source}"


def test_the_best_fix_of_the_skip_connection_is_verified_gradient_preserving_in_two_replays(
    ip: Any, tmp_path: Path
) -> None:
    log = tmp_path / "runs"
    result, got = _session(ip, [MODEL, SETUP], "%%gradcheck\n" + _counting(log, STEP))
    assert type(result.error_in_exec).__name__ == "RuntimeError"  # the user's error, raised again
    best, *others = got["fixes"]
    [fixed] = best["cells"].values()
    assert best["kind"] == "inplace_kwarg" and fixed.count("nn.ReLU()") == 1
    assert best["verified"] is True and best["preserves_gradients"] is True
    assert any(note.startswith("Gradients match the reference") for note in best["notes"])
    executions = got["executions"]
    assert executions["fix_verification"] == 2  # the fixed cells, and the reference
    # every run of the failing cell is in the file: the user's, the diagnosis' replays, the two here
    assert len(log.read_text().split()) == executions["total"] == 1 + executions["replay"] + 2
    assert others and all("a better fix was verified first" in f["notes"][-1] for f in others)
    assert all(not f["verified"] for f in others)


def test_a_fix_that_leaves_the_error_did_not_help_and_the_next_one_is_tried(ip: Any) -> None:
    _, got = _session(ip, TWO_WRITES[:1], "%%gradcheck\n" + TWO_WRITES[1])
    first = got["fixes"][0]
    [fixed] = first["cells"].values()
    assert fixed.count("b = b.mul(2)") == 1 and "a += 1" in fixed
    assert not first["verified"]
    assert any("still raises an in-place error" in note for note in first["notes"])
    verified = [f for f in got["fixes"] if f["verified"]]
    assert verified, "a later fix (the clone or the fallback) was verified"
    # each fix costs at most two replays, and it stopped at the first verified one
    assert got["executions"]["fix_verification"] <= 2 * (got["fixes"].index(verified[0]) + 1)
    assert got["fixes"].index(verified[0]) == max(
        i for i, f in enumerate(got["fixes"]) if "a better fix was verified first" not in f["notes"][-1]
    )


def test_an_earlier_failing_cell_and_a_long_history_do_not_matter(ip: Any) -> None:
    filler = [f"step_{i} = {i} * 2" for i in range(60)]  # a long session before the model
    cells = [*filler, MODEL, SETUP, STEP, STEP]  # the training cell failed twice before
    _, got = _session(ip, cells, "%%gradcheck\n" + STEP)
    best = got["fixes"][0]
    assert best["kind"] == "inplace_kwarg" and best["verified"] and best["preserves_gradients"] is True
    assert got["executions"]["fix_verification"] == 2


def test_no_verify_suggests_without_running(ip: Any, tmp_path: Path) -> None:
    log = tmp_path / "runs"
    _, got = _session(ip, [MODEL, SETUP], "%%gradcheck --no-verify\n" + _counting(log, STEP))
    assert got["executions"]["fix_verification"] == 0
    assert len(log.read_text().split()) == 1 + got["executions"]["replay"]
    assert got["fixes"] and all(not f["verified"] for f in got["fixes"])


def _digest_after(ip: Any, cells: list[str], last: str) -> tuple[dict[str, str], dict[str, Any]]:
    result, _ = _session(ip, cells, last) if last.startswith("%%") else (_plain(ip, cells, last), None)
    assert result.error_in_exec is not None
    return digest({k: v for k, v in ip.user_ns.items() if not k.startswith("_")}), dict(ip.user_ns)


def _plain(ip: Any, cells: list[str], last: str) -> Any:
    ip.run_line_magic("reset", "-f")
    seed_everything()
    with capture_output():
        for source in cells:
            ip.run_cell(source, store_history=True)
        return ip.run_cell(last, store_history=True)


def test_verification_leaves_the_session_as_a_plain_failing_run_leaves_it(ip: Any) -> None:
    plain, _ = _digest_after(ip, [MODEL, SETUP], STEP)
    checked, namespace = _digest_after(ip, [MODEL, SETUP], "%%gradcheck\n" + STEP)
    assert inplace_magic.last_diagnosis()["fixes"][0]["verified"]  # type: ignore[index]
    differing = sorted(k for k in plain.keys() | checked.keys() if plain.get(k) != checked.get(k))
    assert differing == []
    assert any(name.startswith("<random>") for name in plain)
    # the user's own class and model: the fixed class went with the overlay
    assert namespace["model"].block2.act.inplace is True
    assert type(namespace["model"].block2) is namespace["PreActBlock"]
    assert "inplace_magic fixed" not in namespace["PreActBlock"].__init__.__code__.co_filename


SET_CASE = Path(__file__).parent / "cases" / "diagnosis_only" / "set_on_leaf_then_grad.py"


def test_a_text_only_a_replay_makes_ours_is_diagnosed_when_the_replay_confirms_it(ip: Any) -> None:
    # the history holds the earlier tests' failing training cells: a wider replay that reaches one
    # stops at its error, and what it recorded is not taken for this error's
    before, failing = SET_CASE.read_text().split("# %%\n")[1:]
    result, got = _session(ip, [before], "%%gradcheck\n" + failing)
    assert "appears to not have been used in the graph" in str(result.error_in_exec)
    assert got["member"] == "unused_after_set"
    assert got["inplace"]["code"] == "w.set_(torch.randn(3))"


def test_that_text_without_an_in_place_write_is_shown_exactly_as_raised(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    cellreplay._LATEST = None
    with capture_output():
        # one cell that reads nothing from earlier ones: no replay widens into this module's history
        source = (
            "import torch\nw = torch.randn(3, requires_grad=True)\nv = torch.randn(3, requires_grad=True)\n"
        )
        result = ip.run_cell(
            f"%%gradcheck\n{source}(g,) = torch.autograd.grad((w * 2).sum(), v)", store_history=True
        )
    error = result.error_in_exec
    assert "appears to not have been used in the graph" in str(error)
    assert inplace_magic.last_diagnosis() is None
    assert not getattr(error, "__notes__", None)  # another error, exactly as raised: the CLI's verdict too
