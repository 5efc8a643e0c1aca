"""Compression through the SDK on every backend: the manifest keeps the compressor, the
stored pages carry their member counts, later runs use (and insist on) the same one."""

from __future__ import annotations


import numpy as np
import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.compression import open_compressor, parse_compress
from retriever.errors import UsageError
from retriever.staging import Staging
from retriever.types import MultiVector, PageRecord


FILES = ("invoice.pdf", "annual-report.pdf")


pytestmark = pytest.mark.usefixtures("example_plugin")


def _open(home, name: str, indexer: str, compress: str | None) -> Retriever:
    return Retriever(name, data_dir=home, encoder="example/hashing", indexer=indexer,
                     compress=compress)


def _stored(r: Retriever) -> dict[tuple[str, int], PageRecord]:
    """(source name, page) -> the stored record of every page of the collection."""
    out = {}
    for doc, paths in r.documents().items():
        for number in range(1, 100):
            try:
                records = r.indexer.get([f"{doc}:{number}"])
            except Exception:  # noqa: BLE001 - past the document's last page
                break
            if not records:
                break
            out[(paths[0].rsplit("/", 1)[-1], number)] = records[0]
    return out


@pytest.mark.parametrize("indexer", ["lancedb", "faiss", "memory"])
def test_compressed_collection_stores_fewer_vectors_with_their_counts(tmp_path, indexer):
    paths = [SAMPLES / f for f in FILES]
    # the uncompressed pages from memory, which keeps the encoder's float32 vectors as they
    # are: the other backends store float16, and ties between near-orthogonal hashed lines
    # then break differently than they did on the vectors the compressor saw
    with _open(tmp_path, "plain", "memory", None) as plain:
        plain.index(paths)
        before, plain_info = _stored(plain), plain.info()
    with _open(tmp_path, "pooled", indexer, "pool:3") as pooled:
        pooled.index(paths)
        after, info = _stored(pooled), pooled.info()
        hits = pooled.search("IBAN bank transfer", k=1)
    assert plain_info["compressor"] is None and info["compressor"] == "pool:3"
    assert info["vectors"] == sum(r.embedding.n for r in after.values()) \
        < plain_info["vectors"]
    assert after.keys() == before.keys()
    for key, record in after.items():
        mv, page = record.embedding, before[key]
        assert int(mv.weights().sum()) == page.embedding.n  # every line accounted for
        # what was stored is what the compressor makes of the uncompressed page and its
        # paragraphs (pool keeps its clusters inside them)
        expected = open_compressor("pool:3")[1].compress(page.embedding,
                                                          regions=list(page.regions))
        assert mv.n == expected.n
        np.testing.assert_array_equal(mv.weights(), expected.weights())
        np.testing.assert_allclose(mv.boxes, expected.boxes, atol=1e-6)
    assert hits[0].source.endswith("invoice.pdf")
    if indexer != "memory":
        # with the full-text index beside the vectors, the answering paragraph comes first
        # even though pooling merged the IBAN line with lines from elsewhere on the page
        # (hashed lines are all unlike one another); memory has vector evidence only
        assert "IBAN" in hits[0].regions[0].text


@pytest.mark.parametrize("indexer", ["lancedb", "faiss"])
def test_later_runs_keep_the_collections_compressor(tmp_path, indexer):
    with _open(tmp_path, "c", indexer, "merge:2") as r:
        r.index([SAMPLES / "invoice.pdf"])
    with pytest.raises(UsageError, match="built with compressor merge:2, not pool:3"):
        with _open(tmp_path, "c", indexer, "pool:3") as r:
            r.index([SAMPLES / "slide.pdf"])
    # no --compress (or the same one spelled with its default factor) is fine, and the
    # new pages are compressed like the old ones
    for compress in (None, "merge"):
        with _open(tmp_path, "c", indexer, compress) as r:
            r.index([SAMPLES / "slide.pdf"] if compress is None else [SAMPLES / "invoice.pdf"])
    with _open(tmp_path, "c", indexer, None) as r:
        stored = _stored(r)
        assert r.info()["compressor"] == "merge:2"
    assert {key[0] for key in stored} == {"invoice.pdf", "slide.pdf"}
    assert all(r.embedding.counts is not None for r in stored.values())
    # an uncompressed collection refuses a compressor too
    with _open(tmp_path, "u", indexer, None) as r:
        r.index([SAMPLES / "invoice.pdf"])
    with pytest.raises(UsageError, match="built with no compressor"):
        with _open(tmp_path, "u", indexer, "prune:3") as r:
            r.index([SAMPLES / "slide.pdf"])


@pytest.mark.parametrize("text, message", [
    ("pool:", "expected NAME or NAME:FACTOR"),
    ("nope:3", "unknown compressor 'nope'"),
    ("pool:x", "factor"),
    ("pool:1", "factor"),
])
def test_bad_compress_options_are_usage_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        with _open(tmp_path, "bad", "lancedb", text) as r:
            r.index([SAMPLES / "invoice.pdf"])


def test_parse_compress():
    assert parse_compress("pool:3") == ("pool", "3")
    assert parse_compress(" merge ") == ("merge", None)
    assert open_compressor("pool")[0] == "pool:3"  # the default factor is recorded


def test_staging_keeps_member_counts(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    boxes = np.tile([0.1, 0.1, 0.5, 0.5], (5, 1))
    pages = [MultiVector(vectors, boxes, counts=np.array([3, 1, 2, 1, 4])),
             MultiVector(vectors, boxes)]
    staging = Staging(tmp_path / "staging")
    staging.add([PageRecord("d", "/x.pdf", n + 1, 100, 100, mv) for n, mv in enumerate(pages)])
    back = [record.embedding for batch in staging.batches("d") for record in batch]
    assert back[0].counts.tolist() == [3, 1, 2, 1, 4]
    assert back[1].weights().tolist() == [1] * 5  # uncompressed: one each
