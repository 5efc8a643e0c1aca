"""Compression through the SDK on every backend: the manifest keeps the compressor, the
stored pages carry their member counts, later runs use (and insist on) the same one."""

from __future__ import annotations


import numpy as np
import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.compression import check_compressor, open_compressor, parse_compress
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
    assert plain_info["compressor"] is None
    assert info["compressor"] == "pool:3,within_regions=true"
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
    ("pool:", "expected NAME"),
    ("nope:3", "unknown compressor 'nope'"),
    ("pool:x", "factor"),
    ("pool:1", "factor"),
    ("pool:3,within_regions", "is not KEY=VALUE"),
    ("pool:3,within_regions=maybe", "within_regions"),
    ("pool:3,colour=red", "has no option colour"),
    ("pool:3,factor=4", "factor is given twice"),
])
def test_bad_compress_options_are_usage_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        with _open(tmp_path, "bad", "lancedb", text) as r:
            r.index([SAMPLES / "invoice.pdf"])


def test_parse_compress():
    assert parse_compress("pool:3") == ("pool", {"factor": "3"})
    assert parse_compress(" merge ") == ("merge", {})
    assert parse_compress("pool:3, within_regions = no") == \
        ("pool", {"factor": "3", "within_regions": "no"})


def test_the_manifest_spelling_names_every_option_that_shapes_the_vectors():
    # the default factor is recorded, and within_regions (new since pool:3 collections
    # were first written) whenever it differs from what those were built with
    assert open_compressor("pool")[0] == "pool:3,within_regions=true"
    assert open_compressor("pool:3,within_regions=no")[0] == "pool:3"
    assert open_compressor("pool:4,linkage=ward,min_keep=16")[0] == \
        "pool:4,linkage=ward,within_regions=true"
    assert open_compressor("merge")[0] == "merge:2"
    # read back from a manifest, an option it leaves out has the value of its time
    name, compressor = open_compressor("pool:3", recorded=True)
    assert name == "pool:3" and compressor.within_regions is False
    assert open_compressor(open_compressor("pool:5,spatial=0.5")[0], recorded=True)[0] == \
        "pool:5,spatial=0.5,within_regions=true"


@pytest.mark.parametrize("stored, asked, ok", [
    ("pool:3,within_regions=true", "pool", True),
    ("pool:3,within_regions=true", "pool:3,within_regions=yes", True),
    ("pool:3,within_regions=true", "pool:3,within_regions=false", False),
    ("pool:3,within_regions=true", "pool:4", False),
    ("pool:3", "pool:3", True),  # built before within_regions: not compared unless asked
    ("pool:3", "pool:3,within_regions=false", True),
    ("pool:3", "pool:3,within_regions=true", False),
    ("merge:2", "pool:3", False),
    (None, "pool:3", False),
])
def test_check_compressor_compares_only_what_is_asked(stored, asked, ok):
    if ok:
        check_compressor(stored, asked, "c")
    else:
        with pytest.raises(UsageError, match="was built with"):
            check_compressor(stored, asked, "c")


def test_a_pooled_collection_of_an_earlier_version_keeps_pooling_as_it_did(tmp_path):
    """A manifest that records ``pool:3`` from before within_regions: new pages are
    pooled as its old pages were (without paragraph bounds), and ``--compress pool:3``
    is still accepted."""
    with _open(tmp_path, "old", "lancedb", "pool:3,within_regions=false") as r:
        r.index([SAMPLES / "invoice.pdf"])
        assert r.info()["compressor"] == "pool:3"  # what such a manifest says
    with _open(tmp_path, "old", "lancedb", "pool:3") as r:
        r.index([SAMPLES / "annual-report.pdf"])
        stored = _stored(r)
    with _open(tmp_path, "plain", "memory", None) as plain:
        plain.index([SAMPLES / "annual-report.pdf"])
        before = _stored(plain)
    legacy = open_compressor("pool:3,within_regions=false")[1]
    current = open_compressor("pool:3")[1]
    differs = 0
    for key, page in before.items():
        expected = legacy.compress(page.embedding)
        np.testing.assert_array_equal(stored[key].embedding.weights(), expected.weights())
        today = current.compress(page.embedding, regions=list(page.regions))
        differs += today.n != expected.n or not np.array_equal(today.weights(),
                                                                expected.weights())
    assert differs  # the default of today would have pooled some page otherwise


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
