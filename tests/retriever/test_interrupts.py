"""``deferred_interrupt``: Ctrl-C waits for the block; a second one does not."""

from __future__ import annotations

import os
import signal

import pytest

from retriever.interrupts import deferred_interrupt


def test_one_ctrl_c_waits_for_the_block_and_then_stops():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the commit finished")
    assert done == ["the commit finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_goes_through_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            done.append("not reached")
    assert done == []


def test_an_interrupt_wins_over_a_failure_in_the_block():
    with pytest.raises(KeyboardInterrupt) as caught:
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError("disk full")
    assert isinstance(caught.value.__context__, OSError)
