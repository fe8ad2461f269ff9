"""``--audit`` (issue 16, item 1): silent writes into saved tensors, on real torch, real fused
optimizers (torch 2.13 runs Adam/AdamW/SGD(fused=True) on CPU, and none bumps a version counter),
``.data``, ``.numpy()`` and ``.data =`` assignment; no finding on the negatives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import OWN_CASES, SHARED_CASES, case_ids

from inplace_magic.diagnose.silent import SILENT
from inplace_magic.pipeline.audit import audit_cells
from inplace_magic.replay.cells import read_cells

AUDIT = OWN_CASES / "audit"
EXPECTED: dict[str, Any] = json.loads((AUDIT / "expected.json").read_text())


def _audit(path: Path, with_fixes: bool = False):  # type: ignore[no-untyped-def]
    return audit_cells(read_cells(str(path)), str(path), with_fixes=with_fixes)


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD])
def test_fused_optimizers_run_on_cpu_and_bump_no_version(optimizer: Any) -> None:  # Adam, AdamW, SGD
    """The fact the audit exists for: the plain run's version check cannot see a fused step."""
    p = torch.nn.Parameter(torch.randn(3))
    p.grad = torch.ones(3)
    before, values = p._version, p.detach().clone()
    optimizer([p], lr=0.1, fused=True).step()
    assert p._version == before
    assert not torch.equal(p.detach(), values)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_each_hazard_is_found_with_its_writer_and_saver(name: str) -> None:
    expected = EXPECTED[name]
    result = _audit(AUDIT / f"{name}.py")
    assert result.check.status == "ok"  # PyTorch raised nothing: that is the point
    assert result.status == "silent_hazard"
    assert len(result.hazards) == 1
    hazard = result.hazards[0]
    report = hazard.diagnosis.to_json()
    assert hazard.cause == expected["cause"]
    assert report["headline"].startswith(SILENT)
    assert report["error"]["line"] == expected["backward_line"]
    assert [report["saved_by"]["cell"], report["saved_by"]["line"]] == expected["saved_by"]
    if expected["inplace"] is None:
        assert report["inplace"] is None
        assert report["limits"]
    else:
        cell, line, code = expected["inplace"]
        assert (report["inplace"]["cell"], report["inplace"]["line"]) == (cell, line)
        assert report["inplace"]["code"].startswith(code)
    assert [site["line"] for site in report["also_written_by"]] == expected["also"]
    bumped = report["tensor"]["version"] - report["tensor"]["saved_version"]
    # silent: no bump; a compiled graph's lost version counter: eager (the audited run) sees the bump
    assert bumped == (1 if expected["cause"] == "compiled" else 0)


def test_the_gan_fix_is_verified_by_auditing_the_fixed_code() -> None:
    result = _audit(AUDIT / "gan_fused_adam_step_before_g_backward.py", with_fixes=True)
    fixes = result.hazards[0].diagnosis.fixes
    assert fixes and fixes[0]["verified"] and fixes[0]["kind"] == "reorder_step"
    assert fixes[0]["changes_semantics"]
    assert any("Verified in the sandbox" in note for note in fixes[0]["notes"])
    assert fixes[0]["preserves_gradients"] is False  # reordering the step: not compared
    fallback = [f for f in fixes if f["kind"] == "allow_mutation"]
    assert all(not f["verified"] for f in fallback)  # its hooks hide every save from the audit
    # in the sandbox process: the original, its gradient reference, then each candidate audited
    assert result.check.executions.fix_verification >= 3


def test_an_audit_fix_is_verified_in_the_sandbox_and_its_gradients_compared() -> None:
    """The sandbox (fix/sandbox/) audits each candidate and compares its gradients with the original's
    under ``allow_mutation_on_saved_tensors``, which copies the saved output before ``.data.mul_``
    writes it: the out-of-place fix computes the same gradients, and says so."""
    result = _audit(AUDIT / "data_add_between_forward_and_backward.py", with_fixes=True)
    best = result.hazards[0].diagnosis.fixes[0]
    assert best["verified"] and best["preserves_gradients"] is True
    assert best["title"] == "Use `y.data = y.data.mul(0.5)` instead of `y.data.mul_(0.5)`"
    assert any(note.startswith("Gradients match the reference") for note in best["notes"])
    assert result.check.executions.fix_verification >= 3


def _library_negative_imports(path: Path) -> bool:
    meta = json.loads(path.with_suffix(".json").read_text())
    for name in meta.get("requires", []):
        try:
            __import__(name)
        except Exception:
            return False
    return True


NEGATIVES = case_ids(SHARED_CASES / "negatives") + case_ids(OWN_CASES / "libraries" / "negatives")
OWN_NEGATIVES = sorted((AUDIT / "negatives").glob("*.py"))


@pytest.mark.parametrize("path", NEGATIVES + OWN_NEGATIVES, ids=lambda p: p.stem)
def test_no_false_alarm_on_the_negatives(path: Path) -> None:
    if path.with_suffix(".json").exists() and not _library_negative_imports(path):
        pytest.skip("its library does not import here (make test-libraries)")
    result = _audit(path)
    assert result.hazards == [], [h.diagnosis.headline for h in result.hazards]
    assert result.status == result.check.status  # ok, or the negative's own other error
    if result.check.status == "ok":
        assert result.run is not None and result.run.contents.unpacked  # the audit did look


def test_the_cli_exit_codes(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli(
        "check", "--audit", "--no-fix", str(AUDIT / "data_add_between_forward_and_backward.py")
    )
    assert code == 1
    assert f"Silent in-place hazard ({SILENT})" in out and "y.data.mul_(0.5)" in out
    clean = tmp_path / "clean.py"
    clean.write_text("import torch\nw = torch.randn(3, requires_grad=True)\n(w * 2).sum().backward()\n")
    code, out, _ = run_cli("check", "--audit", "--json", str(clean))
    report = json.loads(out)
    assert code == 0 and report["status"] == "ok"
    assert report["audit"]["ran"] and report["audit"]["hazards"] == []
    assert report["executions"]["audit"] == 1


def test_compiled_code_is_audited_eagerly_and_its_gradients_compared() -> None:
    """Real torch.compile (aot_eager: Inductor's C++ build takes about 60 s here, per process): the
    audited run is eager (the silent write inside the compiled function is found), and one more plain
    run gives the compiled gradients, which agree with eager on torch 2.13 here."""
    result = _audit(AUDIT / "compiled_data_write_inside_compiled_fn.py")
    assert result.compiled is not None
    assert result.compiled.compared == 1 and not result.compiled.differ
    assert result.audit_runs == 2
    assert result.run is not None and result.run.compiled_code  # torch.compile's target was seen


def test_the_watched_command_exits_1_on_a_hazard_and_3_on_nproc() -> None:
    """The real ``inplace-magic`` process (its watching parent and the child that audits)."""
    import subprocess
    import sys

    case = str(AUDIT / "numpy_write_into_saved_activation.py")
    command = [sys.executable, "-m", "inplace_magic", "check", "--audit", "--no-fix", "--json", case]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "silent_hazard"
    assert report["audit"]["hazards"][0]["cause"] == "unrecorded"
    refused = subprocess.run(
        [*command[:-3], "--nproc", "2", case], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 3 and "--audit does not take --nproc or a torchrun launch" in refused.stderr


def test_a_write_the_compiled_graph_drops_is_named() -> None:
    """pytorch issue #195422, real on torch 2.13 CPU with aot_eager: ``F.dropout(x, training=False)``
    returns ``x``, so ``y += 1`` writes ``x``; the compiled graph drops that write, and ``w``'s gradient
    (``x`` after the write, eagerly) differs. The write inside the compiled function is named."""
    result = _audit(AUDIT / "compiled_write_through_dropout_alias_dropped.py")
    assert result.check.status == "ok" and result.hazards == []  # no saved tensor was overwritten
    compiled = result.compiled
    assert compiled is not None and compiled.differ and compiled.mismatched == ["w (first backward)"]
    assert compiled.reference == "the audited eager run" and not compiled.hidden_error
    assert compiled.writer is not None and compiled.writer.op == "aten.add_.Tensor"
    assert compiled.writer.location is not None
    assert (compiled.writer.location.line, compiled.writer.location.code[:6]) == (12, "y += 1")
    assert result.status == "silent_hazard" and result.audit_runs == 2


def test_an_inplace_error_inductor_hides_is_diagnosed_and_its_gradients_compared() -> None:
    """pytorch issue #197887, real on torch 2.13 CPU: Inductor saves ``x.t()`` for ``x @ w`` as a
    ``reinterpret_tensor`` of the input, without the input's version counter, so ``batch.copy_(...)``
    before backward passes unseen and ``w.grad`` comes from the new batch; eagerly PyTorch raises.
    The audit's eager run stops at that write and diagnoses it; the compiled gradient is compared
    with an eager run under ``allow_mutation_on_saved_tensors`` (the forward that ran)."""
    case = AUDIT / "inductor_saved_input_view_overwritten.py"
    result = audit_cells(read_cells(str(case)), str(case), with_fixes=True)
    assert result.check.status == "ok"  # compiled, nothing raised
    assert [h.cause for h in result.hazards] == ["compiled"]
    diagnosis = result.hazards[0].diagnosis
    assert diagnosis.inplace is not None and diagnosis.inplace.location is not None
    assert diagnosis.inplace.location.code.startswith("batch.copy_(")
    assert diagnosis.saved_by is not None and diagnosis.saved_by.op == "aten.mm.default"
    assert diagnosis.tensor is not None and diagnosis.tensor.to_json()["version"] == 1  # eager sees it
    compiled = result.compiled
    assert compiled is not None and compiled.hidden_error and compiled.differ
    assert compiled.mismatched == ["w (first backward)"]
    assert compiled.writer == diagnosis.inplace
    assert result.audit_runs == 3  # audited, eager reference, compiled
    best = diagnosis.fixes[0]
    assert best["verified"] and "batch = batch.clone()" in "".join(best["cells"].values())


def test_a_save_observer_sees_each_save_and_its_read_and_its_ops_are_not_recorded() -> None:
    """The recorder's public hook the audit keeps contents through (``Recorder.saves``)."""
    from inplace_magic.record.recorder import Recorder

    seen: list[tuple[object, ...]] = []

    class Observer:
        def packed(self, t: torch.Tensor, rid: int) -> object:
            seen.append(("packed", rid, tuple(t.shape)))
            return t.detach().clone()  # an op of ours: not the user's

        def unpacked(self, t: torch.Tensor, rid: int, kept: object) -> None:
            assert isinstance(kept, torch.Tensor)
            seen.append(("unpacked", rid, torch.equal(kept, t)))

    recorder = Recorder()
    recorder.saves = Observer()
    x = torch.randn(3, requires_grad=True)
    with recorder:
        torch.sigmoid(x).sum().backward()
    assert seen == [("packed", 0, (3,)), ("unpacked", 0, True)]  # sigmoid saves its output
    assert not any("clone" in op.op for op in recorder.trace.ops)
    assert x.grad is not None


def test_write_writes_the_verified_fix_of_a_hazard_with_a_backup(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``--audit --write``: the single-process writer (fix/files.py), and the written code audits clean."""
    path = tmp_path / "step.py"
    original = (AUDIT / "data_add_between_forward_and_backward.py").read_bytes()
    path.write_bytes(original)
    code, out, _ = run_cli("check", "--audit", "--write", str(path))
    assert code == 1  # the hazard was found in the code as it was
    assert "Wrote the fix to" in out
    assert "y.data = y.data.mul(0.5)" in path.read_text()
    assert (tmp_path / "step.py.bak").read_bytes() == original
    code, out, _ = run_cli("check", "--audit", "--no-fix", str(path))
    assert code == 0 and "audit: no silent in-place write found" in out


def test_write_without_a_verified_fix_changes_nothing(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "step.py"
    original = (AUDIT / "numpy_write_into_saved_activation.py").read_bytes()
    path.write_bytes(original)
    code, _, err = run_cli("check", "--audit", "--write", str(path))  # only the fallback: not verified
    assert code == 1 and "no verified fix to write" in err
    assert path.read_bytes() == original and not (tmp_path / "step.py.bak").exists()


def test_a_rank_of_a_torchrun_launch_refuses_the_audit(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Under torchrun each rank would audit alone and re-run init_process_group: refused, with why,
    before the code runs (no process group is made, so no rendezvous is needed)."""
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29999",
    }.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli("check", "--audit", str(AUDIT / "data_add_between_forward_and_backward.py"))
    assert code == 3 and out == ""
    assert "--audit does not take --nproc or a torchrun launch" in err and "in lockstep" in err
