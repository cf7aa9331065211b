"""`innrsic.interrupt`: SIGTERM and SIGHUP raise `KeyboardInterrupt` as Ctrl-C does, an ignored
signal stays ignored, and a deferred block finishes before the interrupt is raised.

The commands that rely on it, interrupted in a subprocess, are tests/cli/test_nothing_lost.py.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from innrsic.interrupt import Terminated, interrupts_deferred, signals_as_interrupt


def send_to_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the Python-level handler has run by the time this returns


def test_signals_raise_keyboard_interrupt_and_respect_ignored_ones() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught, signals_as_interrupt():
        send_to_self(signal.SIGTERM)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with signals_as_interrupt():
            send_to_self(signal.SIGHUP)  # still ignored: nothing raised
    finally:
        signal.signal(signal.SIGHUP, hangup)


def test_an_interrupt_waits_for_the_end_of_a_deferred_block() -> None:
    finished = []
    with pytest.raises(Terminated), signals_as_interrupt(), interrupts_deferred():
        send_to_self(signal.SIGTERM)
        finished.append(True)
    assert finished == [True]
