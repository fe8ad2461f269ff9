"""The engine on small snippets, including each trap named in ../shared/notes/engine.md."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref

import torch

from inplace_magic.pipeline.core import CheckResult, check_cells
from inplace_magic.record.family import classify
from inplace_magic.record.recorder import Recorder
from inplace_magic.record.torch_facts import foreach_bumps_versions
from inplace_magic.replay.cells import split_percent


def check(source: str) -> CheckResult:
    return check_cells(split_percent(textwrap.dedent(source).lstrip("\n")), with_fixes=False)


def test_saved_tensor_hooks_switch_off_the_version_check_so_unpack_redoes_it() -> None:
    # plain autograd with any saved_tensors_hooks installed would silently compute a wrong gradient
    def identity(t: torch.Tensor) -> torch.Tensor:
        return t

    x = torch.randn(3, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(identity, identity):
        y = x.sigmoid()
        y.add_(1)
        y.sum().backward()  # no error: the trap
    result = check(
        """
        import torch
        x = torch.randn(3, requires_grad=True)
        y = x.sigmoid()
        y.add_(1)
        y.sum().backward()
        """
    )
    assert result.status == "inplace_error"
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.reproduced
    assert diagnosis.inplace is not None and diagnosis.inplace.op == "aten.add_.Tensor"
    assert diagnosis.saved_by is not None and diagnosis.saved_by.op == "aten.sigmoid.default"
    assert diagnosis.saved_by.role == "saved its output"
    assert diagnosis.tensor is not None and (diagnosis.tensor.saved_version, diagnosis.tensor.version) == (
        0,
        1,
    )


def test_pack_hook_does_not_keep_saved_outputs_alive() -> None:
    # returning the tensor itself from pack makes an uncollectable cycle through grad_fn
    x = torch.randn(1000, requires_grad=True)
    with Recorder():
        y = x.exp()
        alive = weakref.ref(y)
        del y
    gc.collect()
    assert alive() is None


def test_foreach_optimizer_step_still_breaks_the_replay() -> None:
    # under a dispatch mode _foreach_*_ ops stop bumping versions; without the re-bump the GAN
    # error would vanish in the replay and a failing run would look healthy
    if not foreach_bumps_versions():
        probe = torch.zeros(1)
        with Recorder():
            torch._foreach_add_([probe], 1.0)
        assert probe._version == 1
    result = check(
        """
        import torch, torch.nn as nn
        torch.manual_seed(0)
        D = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        opt = torch.optim.Adam(D.parameters(), foreach=True)
        out = D(torch.randn(4, 8, requires_grad=True))
        out.mean().backward(retain_graph=True)
        opt.step()
        out.sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.reproduced and diagnosis.optimizer_step
    assert diagnosis.inplace is not None
    assert diagnosis.inplace.op.startswith("aten._foreach_")
    assert diagnosis.inplace.optimizer == "Adam.step() call #1"
    assert diagnosis.tensor is not None and diagnosis.tensor.parameter == "2.weight"
    assert diagnosis.saved_by is not None and diagnosis.saved_by.module == "2"


def test_fused_optimizer_never_bumps_so_nothing_is_invented() -> None:
    result = check(
        """
        import torch, torch.nn as nn
        D = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        opt = torch.optim.Adam(D.parameters(), fused=True)
        out = D(torch.randn(4, 8))
        out.mean().backward(retain_graph=True)
        opt.step()
        out.sum().backward()
        """
    )
    assert (result.status, result.diagnosis) == ("ok", None)


def test_leaf_error_is_raised_before_dispatch_and_caught_at_the_call() -> None:
    result = check(
        """
        import torch
        w = torch.randn(3, requires_grad=True)
        w -= 0.1
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.kind == "leaf_inplace"
    assert diagnosis.inplace is not None and diagnosis.inplace.location is not None
    assert diagnosis.inplace.location.line == 3 and diagnosis.inplace.op == "Tensor.sub_"
    assert diagnosis.tensor is not None and diagnosis.tensor.is_leaf and diagnosis.tensor.shape == (3,)
    assert diagnosis.saved_by is None


def test_multi_output_view_names_the_op_that_made_the_view() -> None:
    result = check(
        """
        import torch
        x = torch.randn(4, 6, requires_grad=True) * 2
        a, b = x.chunk(2, dim=1)
        b.clamp_(-1, 1)
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.kind == "view_inplace"
    assert diagnosis.saved_by is not None and diagnosis.saved_by.op == "aten.split.Tensor"
    assert diagnosis.saved_by.location is not None and diagnosis.saved_by.location.line == 3
    assert diagnosis.saved_by.role == "created the view as one of several outputs (split)"


def test_detach_in_place_of_a_saved_tensor_is_not_hidden_by_our_hooks() -> None:
    # detach_() never reaches the dispatcher, and with saved-tensor hooks installed autograd no
    # longer notices it: the function mode records it and the unpack hook raises
    result = check(
        """
        import torch
        lin = torch.nn.Linear(3, 3)
        h = lin(torch.randn(2, 3))
        out = lin(h)
        h.detach_()
        out.sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.kind == "other" and diagnosis.reproduced
    assert diagnosis.inplace is not None and diagnosis.inplace.op == "Tensor.detach_"
    assert diagnosis.inplace.location is not None and diagnosis.inplace.location.line == 5
    assert diagnosis.saved_by is not None and diagnosis.saved_by.location is not None
    assert diagnosis.saved_by.location.line == 4


def test_other_errors_pass_through_with_their_original_type_and_message() -> None:
    result = check(
        """
        import torch
        torch.randn(2, 3) @ torch.randn(4, 5)
        """
    )
    assert result.status == "other_error" and result.diagnosis is None
    assert result.error is not None and result.error.type == "RuntimeError"
    assert result.exception is not None and str(result.exception) == result.error.message
    assert result.error.location is not None and result.error.location.line == 2


def test_a_value_error_is_never_ours() -> None:
    assert classify(ValueError("has been modified by an inplace operation")) is None
    assert classify(RuntimeError("Trying to backward through the graph a second time")) is None


def test_relu_inplace_after_conv_in_a_residual_is_healthy() -> None:
    # the tutorial claim: conv does not save its output, so the in-place ReLU is safe
    result = check(
        """
        import torch, torch.nn as nn
        conv, relu = nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(inplace=True)
        x = torch.randn(1, 2, 5, 5, requires_grad=True)
        (relu(conv(x)) + x).sum().backward()
        """
    )
    assert result.status == "ok"


def test_merge_only_at_the_loss_is_not_a_skip() -> None:
    result = check(
        """
        import torch
        x = torch.randn(5, requires_grad=True)
        y = torch.exp(x)
        s = y.sum()
        y.mul_(2)
        (s + y.sum()).backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.reproduced
    assert diagnosis.skip is None


def test_alias_names_are_reported() -> None:
    result = check(
        """
        import torch
        x = torch.randn(4, requires_grad=True)
        y = torch.sigmoid(x)
        r = y
        y += 1
        r.sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.inplace is not None
    assert set(diagnosis.inplace.names) == {"y", "r"}
    assert "aliases" in diagnosis.explanation


def test_compiled_function_is_diagnosed_eagerly() -> None:
    result = check(
        """
        import torch

        @torch.compile(backend="eager")
        def f(x):
            return x.exp()

        x = torch.randn(3, requires_grad=True)
        y = f(x)
        y.add_(1)
        y.sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.reproduced
    assert diagnosis.inplace is not None and diagnosis.inplace.location is not None
    assert diagnosis.inplace.location.line == 9


def test_a_deep_failing_graph_does_not_crash_the_process() -> None:
    # Python wrappers of autograd nodes (grad_fn, _current_autograd_node) on a deep graph made its
    # teardown overflow the C stack after a failed backward: the recorder must create none per op
    script = textwrap.dedent(
        """
        import torch
        from inplace_magic.record.recorder import Recorder
        x = torch.randn(4, requires_grad=True)
        w = torch.randn(4, requires_grad=True)
        def step():
            h = x * 1.0
            s = h * w
            h.relu_()
            y = h
            for _ in range(100000):
                y = y * 1.0001
            (y + s).sum().backward()
        with Recorder() as recorder:
            try:
                step()
            except RuntimeError:
                pass
        assert recorder.trace.stale is not None
        print("survived")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]


def test_two_neighbouring_convolutions_pick_the_one_that_saved() -> None:
    # the shortcut conv's input save comes right after the stem conv produced that input: both
    # neighbours of the pack are convolutions, the module call around the pack decides
    result = check(
        """
        import torch, torch.nn as nn
        stem, shortcut, act = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.ReLU(inplace=True)
        h = stem(torch.randn(2, 3, 8, 8))
        s = shortcut(h)
        (act(h) + s).sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.saved_by is not None
    assert diagnosis.saved_by.role == "saved its input"
    assert diagnosis.saved_by.location is not None and diagnosis.saved_by.location.line == 4


def test_slices_of_one_buffer_are_not_a_branch() -> None:
    # hidden[t] and hidden[t + 1] share a storage and its version counter: the write into the next
    # slice bumps the version of the saved one, but no value of the saved slice flows through it
    result = check(
        """
        import torch, torch.nn as nn
        h2h = nn.Linear(4, 4)
        hidden = torch.zeros(5, 2, 4)
        for t in range(4):
            hidden[t + 1] = torch.tanh(h2h(hidden[t]))
        hidden.sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.inplace is not None and diagnosis.saved_by is not None
    assert diagnosis.inplace.op == "aten.copy_.default" and diagnosis.saved_by.module == "h2h"
    assert diagnosis.skip is None


def test_a_statistic_of_the_value_is_no_branch_but_a_gate_is() -> None:
    # x /= x.norm() divides by one number computed from x; x *= gate merges a second path of x
    normalised = check(
        """
        import torch
        x = torch.randn(4, 3, requires_grad=True) * 2
        x /= torch.linalg.norm(x) + 1e-6
        x.sum().backward()
        """
    ).diagnosis
    assert normalised is not None and normalised.saved_by is not None
    assert normalised.saved_by.op == "aten.linalg_vector_norm.default" and normalised.skip is None
    gated = check(
        """
        import torch
        w = torch.randn(3, 3, requires_grad=True)
        x = torch.relu(torch.randn(2, 3) @ w)
        x *= torch.sigmoid(x @ w)
        x.sum().backward()
        """
    ).diagnosis
    assert gated is not None and gated.skip is not None
    assert gated.skip.merge_kind == "mul" and gated.skip.writer_position == "inside"


def test_celu_with_a_negative_alpha_is_named_though_the_message_says_elu() -> None:
    result = check(
        """
        import torch, torch.nn as nn
        act = nn.CELU(alpha=-1.0, inplace=True)
        lin = nn.Linear(3, 3)
        act(lin(torch.randn(2, 3))).sum().backward()
        """
    )
    diagnosis = result.diagnosis
    assert diagnosis is not None and diagnosis.member == "negative_slope"
    assert "elu backward" in diagnosis.error.message  # torch names the wrong function
    assert diagnosis.inplace is not None and diagnosis.inplace.module_type is not None
    assert diagnosis.inplace.module_type.startswith("CELU(")
    assert diagnosis.inplace.defined_at is not None and diagnosis.inplace.defined_at.line == 2
    assert "CELU is computed by the in-place elu kernel" in diagnosis.explanation


def test_an_op_produced_a_value_only_while_its_memory_lives() -> None:
    # a storage key is an address: once the memory is freed the next tensor there is not the op's
    from inplace_magic.record.producers import Producers
    from inplace_magic.record.torch_facts import storage_key

    producers = Producers()
    t = torch.randn(3)
    key = (storage_key(t), 0)
    producers.made(key, 7, t)
    view = t[1:]
    del t
    assert producers.of(key) == 7  # a view still holds the memory
    del view
    assert producers.of(key) is None
    assert producers.of((1, 0)) is None  # nothing made there
