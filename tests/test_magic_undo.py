"""The replay's undo log and snapshots on their own: what is copied, and what comes back."""

from __future__ import annotations

import torch

from inplace_magic.replay.undo import ObjectSnapshot, WriteLog


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
