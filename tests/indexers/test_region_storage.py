"""Regions through each backend's storage: exact round trip, old form still read, lazy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retriever import plugin_host
from retriever.errors import RetrieverError
from retriever.manifest import EncoderIdentity, Manifest
from retriever.regions import regions_from_words
from retriever.regions.columns import LazyRegions, RegionColumns
from retriever.types import MultiVector, PageRecord, Region

DIM = 8
ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=DIM,
                          kind="multi")
BACKENDS = {"lancedb": ("lancedb", {}), "faiss": ("faiss", {"index_type": "flat"}),
            "memory": ("memory", {})}


def _open(backend: str, path, create: bool = True):
    name, options = BACKENDS[backend]
    manifest = Manifest(encoder=ENCODER, indexer=name) if create else None
    return plugin_host.get_registry().create("indexer", name, path=path, manifest=manifest,
                                             **options)


def _regions(page: int) -> list[Region]:
    words = [((0.1 + 0.1 * i, 0.1, 0.19 + 0.1 * i, 0.12), f"w{page}{i}", 0.5 + 0.1 * i, 1, 0,
              i // 2) for i in range(5)]
    out = regions_from_words(words, source="ocr")
    out.append(Region((1 / 3, 0.5, 2 / 3, 0.6), f"é page {page}", source="text_layer"))
    return out


def _records(doc: str, pages: int) -> list[PageRecord]:
    rng = np.random.default_rng(len(doc) + pages)
    out = []
    for p in range(1, pages + 1):
        v = rng.standard_normal((3, DIM))
        boxes = np.array([[0.1, 0.1, 0.3, 0.12], [0.3, 0.1, 0.5, 0.12], [0.3, 0.5, 0.6, 0.6]],
                         np.float32)
        out.append(PageRecord(doc_id=doc, source=f"/d/{doc}.pdf", page_number=p, width=100,
                              height=200, embedding=MultiVector.normalized(v, boxes),
                              regions=_regions(p)))
    return out


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    if request.param == "faiss":
        pytest.importorskip("faiss")
    return request.param


def test_regions_round_trip_lazily(backend, tmp_path):
    ix = _open(backend, tmp_path / "c")
    records = _records("doc", 3)
    ix.add(records)
    got = ix.get([r.key for r in records])
    for rec, want in zip(got, records):
        assert isinstance(rec.regions, LazyRegions)
        # the memory backend holds the Region objects it was given: nothing to parse
        assert rec.regions.parsed == (backend == "memory")
        assert rec.regions == want.regions  # exact: boxes, texts, levels, confidences
    ix.close()
    if backend != "memory":  # the memory backend keeps pages in this process only
        again = _open(backend, tmp_path / "c", create=False)
        assert [r.regions for r in again.get([r.key for r in records])] == [
            r.regions for r in records]
        again.close()


def test_lazy_regions_written_again_keep_their_stored_text(backend, tmp_path):
    """Pages read back and written again (a relink, a merge) keep their regions exactly."""
    ix = _open(backend, tmp_path / "c")
    ix.add(_records("a", 2))
    copies = ix.get(["a:1", "a:2"])
    ix.add([PageRecord(doc_id="b", source="/d/b.pdf", page_number=r.page_number, width=1,
                       height=1, embedding=r.embedding, regions=r.regions) for r in copies])
    assert [r.regions for r in ix.get(["b:1", "b:2"])] == [r.regions for r in _records("a", 2)]
    ix.close()


def test_lancedb_reads_tables_written_with_the_old_region_json(tmp_path, monkeypatch):
    from indexers.lancedb import arrow

    monkeypatch.setattr(arrow, "regions_json",  # what the writer stored before columns
                        lambda regions: json.dumps([g.to_dict() for g in regions]))
    ix = _open("lancedb", tmp_path / "c")
    records = _records("old", 2)
    ix.add(records)
    stored = ix._scan(["regions"]).column("regions").to_pylist()
    assert all(s.startswith("[") for s in stored)  # really the old form on disk
    monkeypatch.undo()
    ix.close()
    ix = _open("lancedb", tmp_path / "c", create=False)
    assert [r.regions for r in ix.get(["old:1", "old:2"])] == [r.regions for r in records]
    ix.add(_records("new", 1))  # a table holds both forms side by side
    assert ix.get(["new:1"])[0].regions == _records("new", 1)[0].regions
    ix.close()


def test_faiss_reads_segments_written_with_the_old_region_json(tmp_path, monkeypatch):
    pytest.importorskip("faiss")
    from indexers.faiss import store

    monkeypatch.setattr(store, "regions_object", lambda regs: [r.to_dict() for r in regs])
    ix = _open("faiss", tmp_path / "c")
    records = _records("old", 2)
    ix.add(records)
    ix.close()
    lines = [json.loads(line) for p in (tmp_path / "c").glob("seg-*.pages.jsonl")
             for line in p.read_text().splitlines()]
    assert all(isinstance(line["regions"], list) for line in lines)
    monkeypatch.undo()
    ix = _open("faiss", tmp_path / "c", create=False)
    assert [r.regions for r in ix.get(["old:1", "old:2"])] == [r.regions for r in records]
    ix.close()


def test_lancedb_get_after_another_writer_changed_the_table(tmp_path):
    reader = _open("lancedb", tmp_path / "c")
    reader.add(_records("a", 3) + _records("bb", 2))
    query = _records("a", 3)[1].embedding
    assert reader.search([query], 2)[0]  # the search cache now knows every row's offset
    writer = _open("lancedb", tmp_path / "c", create=False)
    writer.delete(["a"])  # offsets of the remaining rows move
    writer.add(_records("ccc", 2))
    got = reader.get(["bb:2", "ccc:1", "bb:1"])
    assert [r.key for r in got] == ["bb:2", "ccc:1", "bb:1"]
    assert got[0].regions == _records("bb", 2)[1].regions
    with pytest.raises(RetrieverError):
        reader.get(["a:1"])
    writer.close()
    reader.close()


def test_search_never_builds_region_objects(tmp_path, monkeypatch):
    """The SDK grounds from the columns: Region trees are built only when read."""

    from repo_paths import SAMPLES
    from retriever import Retriever

    from example_plugin_host import register_example_plugin


    register_example_plugin()
    with Retriever("t", data_dir=tmp_path, encoder="example/hashing") as r:
        r.index([SAMPLES / "invoice.pdf", SAMPLES / "slide.pdf"])

        def refuse(self):
            raise AssertionError("search built Region objects")

        monkeypatch.setattr(RegionColumns, "to_regions", refuse)
        hits = r.search("IBAN bank transfer", k=2)
        assert hits and hits[0].regions and all(h.text for h in hits[0].regions)
