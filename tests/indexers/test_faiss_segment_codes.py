"""Code files beside a quantized FAISS collection's segments (``indexers.faiss.segment_codes``):
written with each segment, equal to codes built from the stored vectors, used by a new
process instead of re-encoding, and never needed (a segment without one still searches)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from indexers.faiss import codes, segment_codes, store

from faiss_helpers import manifest, normalized, open_faiss, page, query

pytest.importorskip("faiss")


def _collection(path, quantization: str, commits: int = 14, per_commit: int = 45):
    """Pages past the centroid stage's threshold, in enough commits that segments merge."""
    rng = np.random.default_rng(21)
    ix = open_faiss(path, manifest("multi", 16), quantization=quantization)
    for c in range(commits):
        ix.add([page(f"c{c:02d}p{i:02d}", normalized(rng.standard_normal((3 + i % 6, 16))))
                for i in range(per_commit)])
    ix.delete(["c01p03", "c07p00", "c13p44"])
    return ix


def _same_index(a, b) -> None:
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for name in ("bits", "values", "scales"):
        if hasattr(b.codes, name):
            np.testing.assert_array_equal(getattr(a.codes, name), getattr(b.codes, name))
    assert (a.centroid_offsets is None) == (b.centroid_offsets is None)
    if b.centroid_offsets is not None:
        np.testing.assert_array_equal(a.centroid_offsets, b.centroid_offsets)
        np.testing.assert_array_equal(a.centroid_vectors(), b.centroid_vectors())


@pytest.mark.parametrize("quantization", ["binary", "int8"])
def test_stored_codes_equal_codes_built_from_the_vectors(tmp_path, quantization):
    ix = _collection(tmp_path / "c", quantization)
    ix.close()
    reader = open_faiss(tmp_path / "c")
    view = reader._fresh()
    assert len(view.segments) < 14  # commits past the segment limit merged some
    for seg in view.segments:  # every segment, merged ones included, has its file
        assert (tmp_path / "c" / store.code_file(seg.name, quantization)).is_file()
    stored = segment_codes.stored_code_index(view, tmp_path / "c", quantization, True)
    built = codes._build_codes(view, np.arange(len(view)), quantization)
    assert stored is not None and stored.n_pages == len(view) == 14 * 45 - 3
    _same_index(stored, built)


def test_a_new_process_searches_on_the_stored_codes_without_re_encoding(tmp_path,
                                                                         monkeypatch):
    ix = _collection(tmp_path / "c", "binary")
    rng = np.random.default_rng(4)
    queries = [query(normalized(rng.standard_normal((5, 16)))) for _ in range(3)]
    before = [[(h.key, round(h.score, 5)) for h in r] for r in ix.search(queries, 8)]
    ix.close()

    def no_build(*args, **kwargs):
        raise AssertionError("codes were rebuilt from the stored vectors")

    monkeypatch.setattr(codes, "_build_codes", no_build)
    reader = open_faiss(tmp_path / "c")
    after = [[(h.key, round(h.score, 5)) for h in r] for r in reader.search(queries, 8)]
    assert after == before


def test_a_segment_without_a_usable_codes_file_is_encoded_from_its_vectors(tmp_path):
    ix = _collection(tmp_path / "c", "int8", commits=3)
    rng = np.random.default_rng(8)
    queries = [query(normalized(rng.standard_normal((4, 16)))) for _ in range(2)]
    before = [[h.key for h in r] for r in ix.search(queries, 6)]
    ix.close()
    segments = open_faiss(tmp_path / "c")._fresh().segments
    (tmp_path / "c" / store.code_file(segments[0].name, "int8")).write_bytes(b"not a zip")
    (tmp_path / "c" / store.code_file(segments[1].name, "int8")).unlink()
    reader = open_faiss(tmp_path / "c")
    view = reader._fresh()
    assert segment_codes.stored_code_index(view, tmp_path / "c", "int8", True) is None
    assert [[h.key for h in r] for r in reader.search(queries, 6)] == before


def test_code_files_follow_their_segments_through_garbage_collection(tmp_path):
    ix = _collection(tmp_path / "c", "binary", commits=13)  # the 13th commit merges
    ix.add([page("late", normalized(np.ones((4, 16))))])
    names = {p.name for p in (tmp_path / "c").iterdir()}
    live = set(ix._fresh().generation.segments)
    code_files = {n for n in names if ".codes-" in n}
    assert code_files == {store.code_file(s, "binary") for s in live}  # no debris kept


def test_an_unquantized_collection_writes_no_code_files(tmp_path):
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="flat")
    ix.add([page("a", normalized(np.eye(16)[:4]))])
    assert not [p for p in (tmp_path / "c").iterdir() if ".codes-" in p.name]


def test_optimize_gives_segments_of_an_older_collection_their_code_files(tmp_path):
    ix = _collection(tmp_path / "c", "binary", commits=2)
    ix.optimize(keep=timedelta(0))  # one clean segment
    for p in (tmp_path / "c").glob("*.codes-*"):
        p.unlink()  # as a collection written before code files existed
    reader = open_faiss(tmp_path / "c")
    assert segment_codes.stored_code_index(reader._fresh(), tmp_path / "c", "binary",
                                           True) is None
    reader.optimize(keep=timedelta(0))
    view = reader._fresh()
    stored = segment_codes.stored_code_index(view, tmp_path / "c", "binary",
                                             codes._centroids_for(len(view)) > 0)
    assert stored is not None
    _same_index(stored, codes._build_codes(view, np.arange(len(view)), "binary"))
