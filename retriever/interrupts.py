"""Ctrl-C around a commit: let the commit finish, then stop.

Every backend commits atomically, so an interrupt inside a commit already loses nothing;
but if it lands just after the commit and before the caller has noted it, the run's report
would leave out a document that is in fact saved. Holding SIGINT for the few milliseconds
of a commit makes the report exact. A second Ctrl-C goes through at once (the commit then
simply does not happen).
"""

from __future__ import annotations

__all__ = ["deferred_interrupt"]

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held; deliver a held one when the block is done.

    Outside the main thread (where Python cannot change signal handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if held:  # pressed again: the user means it
            raise KeyboardInterrupt
        held.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, hold)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:  # raised from finally, so an interrupt also wins over a failed commit
            _deliver(previous)


def _deliver(handler: Any) -> None:
    """Do what the handler we replaced would have done with the SIGINT we held."""
    if callable(handler):
        handler(signal.SIGINT, None)  # the default one raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGINT)
    # SIG_IGN: the signal was to be ignored anyway
