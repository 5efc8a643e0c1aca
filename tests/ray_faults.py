"""Fault injection for distributed indexing tests: a ``setup`` for ``RayIndexOptions``
that SIGKILLs the encoder actor that first reaches a chosen point of its batch.

The ``marker`` file makes it happen once per job, whichever worker gets there first:
creating it is the decision to die, so a restarted actor (or another one) carries on.
"""

from __future__ import annotations

import os
import signal

from example_plugin_host import register_example_plugin

__all__ = ["kill_once"]


def _first_to_claim(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def kill_once(marker: str, when: str) -> None:
    """Register the example plugin, and make this worker die at ``when``: "encode" (before
    the batch is encoded) or "written" (after its fragment is written, before the
    coordinator hears of it, which leaves an orphan fragment behind)."""
    register_example_plugin()
    from indexers.lancedb.fragments import FragmentWriter

    if getattr(FragmentWriter.write, "kills_once", False):
        return
    original = FragmentWriter.write

    def write(self, records, paths=None):  # type: ignore[no-untyped-def]
        if when == "encode" and _first_to_claim(marker):
            os.kill(os.getpid(), signal.SIGKILL)
        fragments = original(self, records, paths)
        if when == "written" and _first_to_claim(marker):
            os.kill(os.getpid(), signal.SIGKILL)
        return fragments

    write.kills_once = True  # type: ignore[attr-defined]
    FragmentWriter.write = write  # type: ignore[method-assign]
