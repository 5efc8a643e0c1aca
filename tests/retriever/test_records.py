from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import ManifestMismatchError, UsageError
from retriever.manifest import EncoderIdentity, Manifest
from retriever.records import check_records
from retriever.types import MultiVector, PageRecord


def _record(page: int = 1, n: int = 2, dim: int = 4, doc: str = "d") -> PageRecord:
    vectors = np.eye(dim, dtype=np.float32)[np.arange(n) % dim]
    return PageRecord(doc, "s.pdf", page, 10, 10, MultiVector(vectors, np.zeros((n, 4))))


def _manifest(kind: str = "multi") -> Manifest:
    return Manifest(EncoderIdentity("e", "m", "r", 4, kind), indexer="x")


def test_good_records_pass_and_each_violation_is_named():
    check_records([_record(1), _record(2)], _manifest(), "c")
    with pytest.raises(ManifestMismatchError, match="dim 8"):
        check_records([_record(dim=8)], _manifest(), "c")
    with pytest.raises(UsageError, match="1-based"):
        check_records([_record(page=0)], _manifest(), "c")
    with pytest.raises(UsageError, match="single-vector"):
        check_records([_record(n=2)], _manifest("single"), "c")
    with pytest.raises(UsageError, match="more than 1 vectors"):
        check_records([_record(n=2)], _manifest(), "c", max_vectors_per_page=1)
    with pytest.raises(UsageError, match="twice"):
        check_records([_record(1), _record(1)], _manifest(), "c")


def test_missing_pages_error_names_the_first_and_counts_the_rest():
    from retriever.records import missing_pages_error

    err = missing_pages_error("c", ["d:1", "d:2", "d:3"])
    assert "no page 'd:1' (and 2 more)" in err.message and "deleted" in err.hint
