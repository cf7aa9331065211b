"""SIGTERM and SIGHUP handled like Ctrl-C, so every way of stopping innrsic cleans up.

Python turns SIGINT into KeyboardInterrupt, which unwinds the stack: atomic writes remove
their temporary files, a batch reports what it finished, training saves a checkpoint. SIGTERM
(``kill``, schedulers, container runtimes) and SIGHUP (a closed terminal) would instead end the
process on the spot. `signals_as_interrupt` makes them raise `Terminated`, a KeyboardInterrupt
subclass, in the main thread, so they take the same path. A second such signal ends the
process at once (the default action), for when the cleanup itself hangs. Signals the caller
ignores (``nohup``) stay ignored. Exit status: 128 + the signal number (`exit_status`),
130 for Ctrl-C, 143 for SIGTERM.

`interrupts_deferred` holds such an interrupt back until a block of updates that belong
together has finished (a training step's optimizer update and step counter), so that what is
saved on the way out is consistent.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_name(interrupt: KeyboardInterrupt) -> str:
    """The signal's name: SIGTERM or SIGHUP for a `Terminated`, else SIGINT."""
    return signal.Signals(_signum(interrupt)).name


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The conventional exit status after the signal: 128 + its number."""
    return 128 + _signum(interrupt)


def _signum(interrupt: KeyboardInterrupt) -> int:
    return interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated`; the previous handlers are
    restored afterwards. Does nothing outside the main thread (signals go to it alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (and SIGTERM/SIGHUP while they raise, `signals_as_interrupt`) until the
    block ends, then raise it. Handlers that do not raise are left alone. Main thread only;
    elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raising: set[Callable[..., object]] = {signal.default_int_handler, _raise_terminated}
    held: dict[int, Callable[..., object]] = {}
    for signum in (signal.SIGINT, *HANDLED):
        handler = signal.getsignal(signum)
        if handler in raising:
            held[signum] = handler
    caught: list[int] = []
    for signum in held:
        signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        if caught:
            held[caught[0]](caught[0], None)  # raises
