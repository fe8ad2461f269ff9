"""Streams on their own: what can be set back in place, what cannot, and what is said about it."""

from __future__ import annotations

import random
from typing import Any

import numpy
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from inplace_magic.replay.celldeps import names_reached
from inplace_magic.replay.streams import Streams


def test_each_stream_is_set_back_on_the_very_object() -> None:
    it = iter([10, 20, 30])
    loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=2, shuffle=True)
    batches = iter(loader)
    rng, g, r = numpy.random.default_rng(0), torch.Generator().manual_seed(0), random.Random(0)
    namespace = {"it": it, "batches": batches, "rng": rng, "g": g, "r": r}
    start = Streams.capture(namespace)
    first = (next(it), next(batches)[0].tolist(), rng.random(), torch.rand(1, generator=g).item(), r.random())
    after = Streams.capture(namespace)
    assert after.rewind_to(start, set(namespace)) == []
    again = (next(it), next(batches)[0].tolist(), rng.random(), torch.rand(1, generator=g).item(), r.random())
    assert again == first
    after.put_back()
    assert next(it) == 20 and next(batches)[0].tolist() != first[1]  # where the first run left them


def test_iterators_over_any_sequence_and_legacy_numpy_generators_are_set_back() -> None:
    streams: dict[str, Any] = {
        "t": iter((1, 2, 3)),
        "s": iter("abc"),
        "u": iter("äöü"),
        "b": iter(b"abc"),
        "rev": reversed([1, 2, 3]),
        "big": iter(range(2**70, 2**70 + 3)),
        "legacy": numpy.random.RandomState(0),
    }
    start = Streams.capture(streams)
    first = [next(v) for k, v in streams.items() if k != "legacy"] + [streams["legacy"].rand()]
    assert Streams.capture(streams).rewind_to(start, set(streams)) == []
    assert [next(v) for k, v in streams.items() if k != "legacy"] + [streams["legacy"].rand()] == first


def test_what_cannot_be_set_back_is_named_below_the_names_the_cell_reaches() -> None:
    class Stream(IterableDataset):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield from range(4)

    def numbers():  # type: ignore[no-untyped-def]
        yield 1

    class Holder:
        def __init__(self) -> None:
            self.pending = numbers()

    namespace = {
        "gen": numbers(),
        "pairs": zip([1], [2], strict=True),
        "keys": iter({"a": 1}),
        "from_iterable": iter(DataLoader(Stream())),
        "prefetching": iter(DataLoader(TensorDataset(torch.arange(4.0)), num_workers=1)),
        "holder": Holder(),
        "elsewhere": numbers(),
    }
    streams = Streams.capture(namespace)
    reached = {"gen", "pairs", "keys", "from_iterable", "prefetching", "holder"}
    assert sorted(streams.cannot_rewind(reached)) == [
        "`from_iterable` (a DataLoader iterator)",
        "`gen` (a generator)",
        "`holder.pending` (a generator)",
        "`keys` (an iterator (dict_keyiterator))",
        "`pairs` (an iterator (zip))",
        "`prefetching` (a DataLoader iterator with worker processes)",
    ]


def test_an_iterator_that_ran_out_cannot_be_rewound_and_is_reported() -> None:
    it = iter([1])
    start = Streams.capture({"it": it})
    list(it)
    assert Streams.capture({"it": it}).rewind_to(start, {"it"}) == ["`it` (an iterator (list_iterator))"]


def test_names_reached_follow_the_notebooks_own_functions_and_classes() -> None:
    namespace: dict[str, object] = {}
    exec(
        "gen = iter(())\nunused = iter(())\ndef helper():\n    return next(gen)\n"
        "def next_batch():\n    return helper()\n"
        "class Trainer:\n    def step(self):\n        return next_batch()\n"
        "trainer = Trainer()",
        namespace,
    )
    assert {"gen", "helper", "next_batch"} <= names_reached(["trainer.step()"], namespace)
    assert "unused" not in names_reached(["trainer.step()"], namespace)


def test_streams_in_instances_of_ever_new_classes_are_found_and_the_types_remembered_stay_bounded() -> None:
    # a notebook that redefines its classes makes new types at each run: what the walk remembers of
    # each type must neither grow without end nor go stale
    from inplace_magic.replay import streams

    found = []
    for run in range(streams._MAX_FACTS + 10):
        holder = type(f"Holder{run}", (), {})()
        holder.rng = random.Random(run)
        found.append(Streams.capture({"holder": holder}).found)
        assert len(streams._FACTS) <= streams._MAX_FACTS
    assert all([s.path for s in f.values()] == ["holder.rng"] for f in found)
    sampler = type("Sampler", (), {"__next__": lambda self: 1, "__iter__": lambda self: self})()
    assert [s.kind for s in Streams.capture({"sampler": sampler}).found.values()] == ["an iterator (Sampler)"]


def test_the_global_random_states_come_back_whether_or_not_numpys_moved() -> None:
    from inplace_magic.replay.run import RandomState

    numpy.random.seed(0)
    start = RandomState.capture()
    untouched = RandomState.capture()  # torch code that never draws from numpy
    torch.rand(1)
    drawn = numpy.random.rand(3)
    moved = RandomState.capture()
    start.restore(now=untouched)  # numpy said to stand where it started: torch's is set back
    assert numpy.random.rand(3).tolist() != drawn.tolist()
    start.restore(now=moved)  # numpy's moved: it is set back too
    assert numpy.random.rand(3).tolist() == drawn.tolist()
    start.restore()
    assert numpy.random.rand(3).tolist() == drawn.tolist()
