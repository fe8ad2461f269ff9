"""The replay's undo log and snapshots on their own: what is copied, and what comes back."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

import pytest
import torch

from inplace_magic.replay import undo
from inplace_magic.replay.undo import DataAssignments, ObjectSnapshot, WriteLog


def test_only_tensors_that_existed_before_are_copied_once_and_restored_bit_for_bit() -> None:
    before = torch.arange(6.0)
    view = before[2:4]
    with WriteLog() as log:
        fresh = torch.zeros(1000)  # allocated by the replay: never copied
        fresh.add_(1)
        before.mul_(2)
        view.add_(1)  # same storage: not copied again
        before.unsqueeze_(0)  # metadata-only write
    assert log.copied_bytes == before.untyped_storage().nbytes()
    log.restore()
    assert before.shape == (6,) and before.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert before._version == 0 and view._version == 0  # the version counter too


def test_batch_norm_running_stats_are_restored_though_the_schema_does_not_mark_them() -> None:
    bn = torch.nn.BatchNorm1d(3)
    mean, count = bn.running_mean.clone(), int(bn.num_batches_tracked)
    with WriteLog() as log:
        bn(torch.randn(8, 3))
    assert not torch.equal(bn.running_mean, mean)
    log.restore()
    assert torch.equal(bn.running_mean, mean) and int(bn.num_batches_tracked) == count


def test_optimizer_steps_and_grads_are_undone() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    weights = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad for p in model.parameters()]
    state = {p: {k: (v, v.clone()) for k, v in s.items()} for p, s in optimizer.state.items()}
    history: list[float] = []
    namespace = {"model": model, "optimizer": optimizer, "history": history}
    snapshot = ObjectSnapshot.take(namespace)
    with WriteLog() as log:
        optimizer.zero_grad()  # set_to_none: no op reaches the dispatcher
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        history.append(1.0)
        namespace["model"] = torch.nn.Linear(3, 1)
    log.restore()
    snapshot.restore()
    assert namespace["model"] is model and history == []
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))
    for param, values in state.items():
        for key, (value, copy) in values.items():
            assert optimizer.state[param][key] is value and torch.equal(value, copy)


def test_a_data_assignment_is_put_back_with_its_memory_and_version() -> None:
    # a momentum encoder's update: no aten op writes the parameter, so only the function mode sees it
    key = torch.nn.Parameter(torch.ones(3))
    memory, version = key.untyped_storage().data_ptr(), key._version
    with WriteLog() as log, DataAssignments() as assignments:
        key.data = key.data * 0.9 + 0.1 * torch.full((3,), 5.0)
        with torch.no_grad():
            key.add_(1)  # and written in its new memory afterwards
    assert key.tolist() != [1.0, 1.0, 1.0]
    assignments.restore()
    log.restore()
    assert key.tolist() == [1.0, 1.0, 1.0] and key.untyped_storage().data_ptr() == memory
    assert key._version == version


def test_a_tensor_set_to_other_memory_gets_its_own_memory_back() -> None:
    t = torch.arange(4.0)
    memory = t.untyped_storage().data_ptr()
    with WriteLog() as log:
        t.set_(torch.zeros(2).untyped_storage())
    log.restore()
    assert t.untyped_storage().data_ptr() == memory and t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_containers_of_any_size_and_depth_are_put_back() -> None:
    history = list(range(20_000))
    lookup = {i: [i] for i in range(20_000)}
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": {"g": []}}}}}}}
    replay_buffer: deque[int] = deque([1, 2], maxlen=100)
    namespace = {"history": history, "lookup": lookup, "deep": deep, "buffer": replay_buffer}
    snapshot = ObjectSnapshot.take(namespace)
    history.append(1)
    lookup[19_999].append(0)
    deep["a"]["b"]["c"]["d"]["e"]["f"]["g"].append(1)
    replay_buffer.append(3)
    snapshot.restore()
    assert len(history) == 20_000 and lookup[19_999] == [19_999]
    assert deep["a"]["b"]["c"]["d"]["e"]["f"]["g"] == [] and list(replay_buffer) == [1, 2]
    assert snapshot.complete


def test_containers_empty_at_the_snapshot_are_emptied_again_and_keep_their_identity() -> None:
    # set aside as the walk meets them, never queued: still emptied, and still the very objects
    holder = _Holder()
    holder.slots = {"list": [], "dict": OrderedDict(), "set": set(), "deque": deque()}
    module = torch.nn.Linear(2, 2)  # a dozen empty hook dicts of its own
    namespace = {"holder": holder, "module": module}
    held = dict(holder.slots)
    snapshot = ObjectSnapshot.take(namespace, roots={"holder", "module"})
    held["list"].append(1)
    held["dict"]["k"] = 1
    held["set"].add(1)
    held["deque"].append(1)
    holder.slots["list"] = [2]
    module.register_forward_hook(lambda *args: None)
    snapshot.restore()
    assert all(holder.slots[key] is value and not value for key, value in held.items())
    assert not module._forward_hooks


class _Holder:
    slots: dict[str, Any]


def test_a_snapshot_that_stops_at_its_object_limit_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(undo, "MAX_OBJECTS", 10)
    assert not ObjectSnapshot.take({"many": [[i] for i in range(20)]}).complete
    assert ObjectSnapshot.take({"few": [[i] for i in range(5)]}).complete


def test_a_foreach_optimizer_step_under_the_undo_log_alone_still_breaks_backward() -> None:
    # a verification run has the undo log as its only dispatch mode: an in-place _foreach_ op skips
    # the version bump under it (torch 2.13 CPU), so the step's write to a saved weight would go
    # unseen and the fix under test would look as if it healed the error
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), foreach=True)
    weight = model[2].weight
    versions = weight._version
    with WriteLog() as log:
        out = model(torch.randn(4, 8))
        out.mean().backward(retain_graph=True)
        optimizer.step()
        assert weight._version == versions + 1  # once, never twice
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
    log.restore()
    assert weight._version == versions


def _lean_recorder(log: WriteLog, lift: bool = True) -> Any:
    from inplace_magic.record.recorder import Recorder

    # the kernel's recorder of a stale saved tensor: backward's ops unrecorded, the undo log its observer
    return Recorder(calls=False, backward_ops=False, undo=log, lift=lift)


def test_under_the_recorder_memory_the_forward_allocated_is_not_copied_but_older_memory_is() -> None:
    weight = torch.ones(4, requires_grad=True)
    older = torch.arange(4.0)
    log = WriteLog()
    with _lean_recorder(log):
        h = (weight * 2).relu()
        h.relu_()  # written in place, but allocated by the replay: nothing to copy
        older.mul_(3)
    assert log.copied_bytes == older.untyped_storage().nbytes()
    log.restore()
    assert older.tolist() == [0.0, 1.0, 2.0, 3.0] and older._version == 0


def test_under_the_recorder_writes_made_during_backward_into_older_memory_are_undone() -> None:
    # backward's own ops are not recorded, but a gradient accumulated into an existing .grad and a
    # hook writing an older tensor are still seen by the undo log (the dispatch mode kept on: with
    # it off, tests/test_lifted_backward.py)
    weight = torch.nn.Parameter(torch.ones(3))
    (weight * 2).sum().backward()
    grad = weight.grad
    assert grad is not None
    grad_before, calls = grad.clone(), torch.zeros(1)

    def count(g: torch.Tensor) -> None:
        calls.add_(1)

    log = WriteLog()
    with _lean_recorder(log, lift=False):
        x = weight * 3
        x.register_hook(count)
        x.sum().backward()
    assert weight.grad is grad and not torch.equal(grad, grad_before) and calls.item() == 1
    log.restore()
    assert torch.equal(grad, grad_before) and calls.item() == 0


def test_a_view_whose_history_torch_refuses_to_show_does_not_stop_the_snapshot() -> None:
    class Flatten(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return x.view(-1)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            return grad.view(2, 3)

    w = torch.randn(2, 3, requires_grad=True)
    flat = Flatten.apply(w * 2)
    with torch.no_grad():
        flat.clamp_(min=0)  # allowed here; afterwards `flat.is_leaf` raises
    with pytest.raises(RuntimeError, match="view"):
        _ = flat.is_leaf
    namespace: dict[str, Any] = {"flat": flat, "w": w, "held": [flat]}
    snapshot = ObjectSnapshot.take(namespace)
    assert [t for t, _, _ in snapshot.leaves] == [w]  # the view is no leaf: it has a base
    namespace["held"].append(w)
    snapshot.restore()
    assert len(namespace["held"]) == 1 and namespace["held"][0] is flat


def test_what_the_snapshot_does_with_a_value_follows_its_type_and_subclasses_and_stays_bounded() -> None:
    from collections import defaultdict, namedtuple

    Pair = namedtuple("Pair", "a b")
    weight = torch.nn.Parameter(torch.ones(2))
    holders = [type(f"Holder{i}", (), {})() for i in range(undo._MAX_KINDS + 5)]  # new classes each run
    for holder in holders:
        holder.items = [1]
    state: dict[str, Any] = {
        "ordered": OrderedDict(a=[1]),
        "default": defaultdict(list, a=[2]),
        "pair": Pair([3], deque([4])),
        "weight": weight,
        "holders": holders,
    }
    snapshot = ObjectSnapshot.take(state)
    assert len(undo._KINDS) <= undo._MAX_KINDS
    state["ordered"]["b"] = []
    state["default"]["a"].append(5)
    state["pair"].a.append(6)
    state["pair"].b.clear()
    weight.requires_grad_(False)
    holders[-1].items.append(7)
    snapshot.restore()
    assert state["ordered"] == {"a": [1]} and state["default"]["a"] == [2]
    assert state["pair"] == Pair([3], deque([4])) and weight.requires_grad and holders[-1].items == [1]
