"""The time limit of re-executed code and the one-interrupt rule, with real signals in this process."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from inplace_magic.replay.time_limit import REPEAT_S, TimeLimitExceeded, interrupt_once, time_limit


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


def test_a_swallowed_limit_is_raised_again() -> None:
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded), time_limit(0.2):
        with contextlib.suppress(BaseException):  # the user's code swallows the first one
            _spin(5)
        _spin(5)
    assert time.monotonic() - started < 0.2 + REPEAT_S + 1


def test_limits_nest_the_sooner_one_counts_and_the_outer_one_goes_on() -> None:
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded), time_limit(0.3), time_limit(10):
        _spin(5)
    assert time.monotonic() - started < 2
    with pytest.raises(TimeLimitExceeded), time_limit(0.6):
        with pytest.raises(TimeLimitExceeded), time_limit(0.1):
            _spin(5)
        inner_done = time.monotonic()
        _spin(5)
    assert 0.2 < time.monotonic() - inner_done < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no limit is left behind


def test_the_first_interrupt_stops_the_code_and_the_next_ones_are_ignored() -> None:
    with interrupt_once() as interrupted:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            _spin(5)
        os.kill(os.getpid(), signal.SIGINT)  # a terminal and the watching process both sent one
        _spin(0.2)
    assert interrupted == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
