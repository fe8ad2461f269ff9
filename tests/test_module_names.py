"""Module and parameter names as the analysis gives them: the same as torch's own walks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from inplace_magic.diagnose.module_names import ModuleNamer, _named_modules, _parameters_and_buffers
from inplace_magic.record.records import Trace
from inplace_magic.record.torch_facts import storage_key


class Shared(nn.Module):
    """One block at two places, a None child and a buffer: what trips a hand-written walk."""

    def __init__(self) -> None:
        super().__init__()
        block = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        self.first, self.again = block, block
        self.skip = None
        self.tail = nn.ModuleList([nn.BatchNorm1d(2), block[0]])
        self.register_buffer("scale", torch.ones(1))


class OwnWalk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 2)

    def named_modules(self, *args: Any, **kwargs: Any) -> Any:
        yield "renamed", self.inner


def test_the_walk_gives_what_torchs_named_modules_gives() -> None:
    for model in (Shared(), nn.Sequential(Shared(), nn.Linear(2, 2)), nn.Linear(2, 2), OwnWalk()):
        ours = [(path, id(m)) for path, m in _named_modules(model)]
        assert ours == [(path, id(m)) for path, m in model.named_modules(remove_duplicate=False)]
        named = [(n, id(t)) for n, t in _parameters_and_buffers(model, _named_modules(model))]
        assert named == [(n, id(t)) for n, t in [*model.named_parameters(), *model.named_buffers()]]


def test_names_of_modules_and_parameters_held_at_two_places_are_their_first() -> None:
    model = Shared()
    namer = ModuleNamer(Trace(), {"model": model, "block": model.first})  # a name for a part too
    assert namer.models == [("model", model)]  # the part is contained in the model
    assert namer.path((model, model.again, model.again[1])) == "first.1"
    assert namer.parameter(storage_key(model.tail[1].weight)) == "first.0.weight"
    assert namer.parameter(storage_key(model.scale)) == "scale"
