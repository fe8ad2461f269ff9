"""The replay's progress line (``ipython/progress.py``) in a terminal: drawn only once a replay has
run ``delay`` seconds, ended by its final line after its last tick, and drawn by one thread for
the process rather than a thread started per replay (every diagnosis, the short ones included)."""

from __future__ import annotations

import contextlib
import io
import threading
import time

from inplace_magic.ipython.progress import Progress


class _Terminal:
    """A shell that is no kernel: the line goes to stderr."""


def _ran(delay: float, seconds: float) -> str:
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        progress = Progress(_Terminal(), "replaying In[1]", delay=delay, interval=0.05)
    with progress:
        time.sleep(seconds)
    return stream.getvalue()


def test_a_short_replay_shows_nothing_and_starts_no_thread_of_its_own() -> None:
    _ran(0.5, 0.0)  # the ticker exists from here on
    threads = threading.active_count()
    stream = io.StringIO()
    for _ in range(20):
        with contextlib.redirect_stderr(stream):
            progress = Progress(_Terminal(), "replaying In[1]", delay=0.5)
        with progress:
            assert threading.active_count() == threads
    assert stream.getvalue() == ""


def test_a_long_replay_ticks_and_ends_with_its_final_line_in_each_of_two_at_once() -> None:
    outputs: list[str] = []
    other = threading.Thread(target=lambda: outputs.append(_ran(0.05, 0.4)))
    other.start()
    outputs.append(_ran(0.05, 0.3))
    other.join()
    for text in outputs:
        lines = [line for line in text.split("\r") if line]
        assert len(lines) >= 3 and all("replaying In[1]... " in line for line in lines[:-1])
        assert lines[-1].startswith("inplace_magic: replaying In[1]: done after 0.")
        assert lines[-1].endswith(" s\n")
