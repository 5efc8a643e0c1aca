"""``retriever collections shard`` and ``shard_collection`` on both built-in backends: pages
copied as stored (vectors, boxes, counts, regions, paths), each in the shard its doc id
hashes to, nothing encoded (the collections are built from random records, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_subprocess import run_cli_home

from retriever import plugin_host
from retriever.distributed import shard_collection, shard_name, shard_of
from retriever.manifest import EncoderIdentity, Manifest
from retriever.types import MultiVector, PageRecord, Region

ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=8,
                          kind="multi")
DOCS = {f"doc{i:02d}": list(range(1, 2 + i % 3)) for i in range(12)}  # 1 to 3 pages each


def _build(home: Path, name: str, backend: str, compressor: str | None = None) -> None:
    options = {"index_type": "flat"} if backend == "faiss" else {}
    manifest = Manifest(encoder=ENCODER, indexer=backend, compressor=compressor,
                        indexer_options=options)
    ix = plugin_host.get_registry().create(
        "indexer", backend, path=home / "collections" / name / backend, manifest=manifest,
        **options)
    rng = np.random.default_rng(0)
    records = []
    for doc, numbers in DOCS.items():
        for p in numbers:
            counts = rng.integers(1, 4, size=3) if compressor else None
            emb = MultiVector.normalized(rng.normal(size=(3, 8)), rng.uniform(0, 0.5, (3, 4))
                                         .cumsum(axis=1).clip(0, 1))
            if counts is not None:
                emb = MultiVector(emb.vectors, emb.boxes, counts=counts)
            records.append(PageRecord(doc, f"/docs/{doc}.pdf", p, 100, 140, emb,
                                      [Region((0.1, 0.1, 0.9, 0.2), f"{doc} page {p}",
                                              source="text_layer")]))
    ix.replace(records, paths={d: [f"/docs/{d}.pdf", f"/copies/{d}.pdf"] for d in DOCS})
    ix.close()


def _open(home: Path, name: str, backend: str):
    return plugin_host.get_registry().create("indexer", backend,
                                             path=home / "collections" / name / backend)


@pytest.mark.parametrize("backend", ["lancedb", "faiss"])
def test_shards_hold_the_stored_pages_of_their_documents(tmp_path, backend):
    _build(tmp_path, "src", backend, compressor="pool:2")
    report = shard_collection("src", 3, data_dir=tmp_path)
    assert sum(report.documents) == len(DOCS)
    source = _open(tmp_path, "src", backend)
    for index in range(3):
        shard = _open(tmp_path, shard_name("src", index, 3), backend)
        assert shard.manifest == source.manifest
        held = shard.paths()
        assert set(held) == {d for d in DOCS if shard_of(d, 3) == index}
        keys = [f"{d}:{p}" for d in held for p in DOCS[d]]
        assert shard.count() == len(keys)
        for got, want in zip(shard.get(keys), source.get(keys)):
            assert np.array_equal(got.embedding.vectors, want.embedding.vectors)
            assert np.array_equal(got.embedding.boxes, want.embedding.boxes)
            assert np.array_equal(got.embedding.weights(), want.embedding.weights())
            assert list(got.regions) == list(want.regions)
            assert got.paths == want.paths and len(got.paths) == 2
        shard.close()
    source.close()


def test_the_command_splits_and_a_re_run_copies_nothing(tmp_path):
    _build(tmp_path, "src", "lancedb")
    first = run_cli_home(["collections", "shard", "src", "--shards", "2", "--json"], tmp_path)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)["shards"]
    assert [r["name"] for r in rows] == ["src.shard-0-of-2", "src.shard-1-of-2"]
    assert sum(r["documents"] for r in rows) == len(DOCS)
    assert sum(r["pages"] for r in rows) == sum(len(p) for p in DOCS.values())
    again = run_cli_home(["collections", "shard", "src", "--shards", "2"], tmp_path)
    assert again.returncode == 0 and f"{len(DOCS)} documents were in their shard" in again.stdout
    listed = run_cli_home(["collections", "list", "--json"], tmp_path)
    assert json.loads(listed.stdout) == ["src", "src.shard-0-of-2", "src.shard-1-of-2"]


def test_a_missing_collection_is_a_clear_error(tmp_path):
    out = run_cli_home(["collections", "shard", "nope", "--shards", "2"], tmp_path)
    assert out.returncode == 4 and "nope" in out.stderr and "Traceback" not in out.stderr


def test_an_interrupted_routed_index_reports_every_shard_s_commits(tmp_path, monkeypatch):
    from retriever import Retriever
    from retriever.distributed import ShardedCollection
    from retriever.errors import IndexInterrupted
    from retriever.indexing import IndexReport
    from retriever.ingest import content_hash

    _build(tmp_path, "src", "lancedb")
    shard_collection("src", 2, data_dir=tmp_path)
    files, n = {}, 0
    while len(files) < 2:  # one file per shard (contents never parsed: index is stubbed)
        path = tmp_path / f"f{n}.pdf"
        path.write_bytes(f"%PDF-1.4 {n}".encode())
        files.setdefault(shard_of(content_hash(path), 2), path)
        n += 1

    def index(self, paths, **_):
        if self.collection.startswith("src.shard-1"):
            raise IndexInterrupted(IndexReport(indexed=[str(p) for p in paths]))
        return IndexReport(indexed=[str(p) for p in paths], pages=1)

    monkeypatch.setattr(Retriever, "index", index)
    with pytest.raises(IndexInterrupted) as stopped:
        ShardedCollection("src", data_dir=tmp_path).index([files[0], files[1]])
    assert stopped.value.report.indexed == [str(files[0]), str(files[1])]
