"""Text batches by token count (plugins/text/batching.py)."""

import pytest

from plugins.text.batching import length_batches


def test_batches_cover_every_index_once_shortest_first():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = list(length_batches(lengths, 3))
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_token_counts_not_characters_decide_the_padding():
    # A URL has several times the tokens of prose of its length; grouped by characters it
    # would share a batch with short prose and pad all of it to its width.
    lengths = [4, 30, 5, 28, 6, 31]  # tokens of prose, URL, prose, URL, ...
    padded = sum(max(lengths[i] for i in b) * len(b) for b in length_batches(lengths, 3))
    assert padded == 3 * 6 + 3 * 31


def test_empty_and_bad_batch_size():
    assert list(length_batches([], 4)) == []
    with pytest.raises(ValueError, match="batch_size"):
        list(length_batches([1], 0))
