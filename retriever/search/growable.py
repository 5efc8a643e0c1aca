"""Arrays that grow by appends without copying what they hold: the in-memory search state
that a commit extends (codes, centroids) is appended to, not rebuilt.

``append_rows`` keeps spare capacity past the rows in use. Snapshots of one growing array
share its buffer: each sees only its own first ``n`` rows, so a later snapshot writing
past them changes nothing an earlier one reads. Only the snapshot holding the last rows
written may append in place; any other (or a full buffer) gets a fresh copy with room to
grow by a sixteenth, so appends cost O(1) per row amortised while spare RAM stays small.
"""

from __future__ import annotations

__all__ = ["Spare", "append_rows"]

from dataclasses import dataclass

import numpy as np

_GROWTH = 16  # spare capacity: a sixteenth of the rows, and at least 4x the append


@dataclass
class Spare:
    """The buffer behind a growing array and how many of its rows are written."""

    buffer: np.ndarray
    used: int


def _is_prefix(head: np.ndarray, spare: Spare) -> bool:
    return (head.shape[1:] == spare.buffer.shape[1:] and head.dtype == spare.buffer.dtype
            and head.__array_interface__["data"][0] == spare.buffer.__array_interface__["data"][0]
            and head.shape[0] == spare.used)


def append_rows(head: np.ndarray, spare: Spare | None, tail: np.ndarray
                ) -> tuple[np.ndarray, Spare]:
    """``head`` followed by ``tail`` -> (the joined rows, their spare capacity)."""
    n, m = head.shape[0], tail.shape[0]
    if spare is not None and _is_prefix(head, spare) and spare.buffer.shape[0] >= n + m:
        spare.buffer[n : n + m] = tail  # past every existing snapshot's rows
        spare.used = n + m
        return spare.buffer[: n + m], spare
    capacity = n + m + max(4 * m, (n + m) // _GROWTH)
    buffer = np.empty((capacity, *head.shape[1:]), dtype=head.dtype)
    buffer[:n] = head
    buffer[n : n + m] = tail
    return buffer[: n + m], Spare(buffer, n + m)
