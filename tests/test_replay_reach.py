"""One walk of the namespace for a kernel replay's streams: the check before the replay (would it move a
generator on?) and the replay itself (rewind, put back) read the same :class:`Reach`, in a real IPython
shell with the extension loaded and real torch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from shells import with_the_extension

from inplace_magic.replay.kernel import CellCode, FailedCell, Reach, would_advance
from inplace_magic.replay.streams import Streams


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    yield from with_the_extension()


FAILING = (
    "batch = next(batches)\n"
    "w = torch.ones(3, requires_grad=True)\n"
    "y = (w * batch).sigmoid()\n"
    "y.mul_(2)\n"
    "y.sum().backward()\n"
)


def test_one_walk_of_the_streams_serves_the_check_and_the_replay(ip: Any, monkeypatch: Any) -> None:
    ip.run_line_magic("reset", "-f")
    ip.run_cell("import torch\nbatches = iter([torch.full((3,), float(i)) for i in range(5)])")
    walks: list[int] = []
    capture = Streams.capture.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Streams], namespace: dict[str, Any], skip: frozenset[str] = frozenset()) -> Streams:
        walks.append(len(namespace))
        return capture(cls, namespace, skip)

    monkeypatch.setattr(Streams, "capture", classmethod(counted))
    result = ip.run_cell("%%gradcheck --no-fix\n" + FAILING)
    monkeypatch.undo()
    assert isinstance(result.error_in_exec, RuntimeError)
    # the cell's own start (what a replay rewinds to), then one for the diagnosis: the check and the
    # replay used to walk it once each
    assert len(walks) == 2
    diagnosis = ip.run_cell("import inplace_magic\ninplace_magic.last_diagnosis()").result
    assert diagnosis["reproduced"] and diagnosis["inplace"]["code"] == "y.mul_(2)"
    # the replay took the batch the first run took, and the iterator is where the failed run left it
    assert float(ip.user_ns["batch"][0]) == 0.0
    assert float(next(ip.user_ns["batches"])[0]) == 1.0


def test_a_generator_also_held_under_an_unread_name_is_found_where_a_magic_hides_names(ip: Any) -> None:
    ip.run_line_magic("reset", "-f")
    # bound to a name the cell does not read first: a walk of the whole namespace meets it there
    ip.run_cell("def numbers():\n    yield from range(9)\nother = numbers()\ngen = other")
    source = ip.transform_cell("!true\nx = next(gen)\n")
    window = FailedCell([CellCode(99, source, "<replay-reach-99>")], None)
    reach = Reach.of(ip, window)
    assert reach.roots is None  # the shell escape may read anything: the snapshot walks all
    assert reach.streams.cannot_rewind(reach.reached) == []  # the trap: found as `other`, not read
    assert would_advance(ip, window, reach) == ["`gen` (a generator)"]
    assert would_advance(ip, window) == ["`gen` (a generator)"]  # the same, from a walk of its own


def test_the_names_a_replay_leaves_alone_follow_the_session_as_names_come_go_and_unhide(ip: Any) -> None:
    from inplace_magic.replay.kernel import hidden_names

    def by_hand() -> frozenset[str]:
        return frozenset(n for n in ip.user_ns if n in ip.user_ns_hidden or n.startswith("_"))

    ip.run_line_magic("reset", "-f")
    for step in range(3):
        ip.run_cell(f"_scratch{step} = {step}\nvalue{step} = {step}", store_history=True)
        assert hidden_names(ip) == by_hand()
    ip.run_cell("del _scratch0\nvalue0 = 'again'")
    assert hidden_names(ip) == by_hand() and "_scratch0" not in hidden_names(ip)
    ip.push({"pushed": 1}, interactive=False)  # hidden from %who, and from the replay
    assert "pushed" in hidden_names(ip)
    ip.push({"pushed": 2})  # interactive: the user's now, so the replay's snapshot covers it
    assert "pushed" not in hidden_names(ip) and hidden_names(ip) == by_hand()
