"""Arrays grown by appends: in place when possible, and no snapshot ever sees a change."""

from __future__ import annotations

import numpy as np

from retriever.search.growable import append_rows


def test_appends_reuse_the_buffer_and_old_snapshots_keep_their_rows():
    base = np.arange(20, dtype=np.int32).reshape(10, 2)
    first, spare = append_rows(base, None, np.full((2, 2), -1, np.int32))  # a copy, room
    assert first.shape == (12, 2) and spare.buffer.shape[0] > 12
    second, spare2 = append_rows(first, spare, np.full((3, 2), -2, np.int32))
    assert spare2 is spare and np.shares_memory(first, second)  # in place
    np.testing.assert_array_equal(first[:10], base)
    np.testing.assert_array_equal(first[10:], -1)  # unchanged by the later append
    np.testing.assert_array_equal(second[12:], -2)


def test_an_older_snapshot_appending_again_gets_a_copy():
    base = np.zeros((4, 3), np.float32)
    a, spare = append_rows(base, None, np.ones((1, 3), np.float32))
    b, _ = append_rows(a, spare, np.full((1, 3), 2, np.float32))
    # ``a`` is no longer the last snapshot: appending to it must not overwrite b's row
    c, spare_c = append_rows(a, spare, np.full((1, 3), 3, np.float32))
    assert not np.shares_memory(b, c)
    np.testing.assert_array_equal(b[-1], 2)
    np.testing.assert_array_equal(c[-1], 3)


def test_a_full_buffer_grows_by_a_copy():
    head, spare = append_rows(np.zeros((0, 2)), None, np.ones((1, 2)))
    for i in range(200):
        head, spare = append_rows(head, spare, np.full((1, 2), i))
    assert head.shape == (201, 2)
    np.testing.assert_array_equal(head[1:, 0], np.arange(200))
    assert spare.buffer.shape[0] <= 201 + max(4, 201 // 16)
