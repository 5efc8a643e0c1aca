"""Distributed indexing into a collection on S3 (a moto server on loopback): Ray workers
write the fragments into the bucket, the coordinator commits them there, and the hits
equal those of a local collection built from the same files; every commit is a
conditional put of its version. The job starts its own
local Ray cluster, as ``retriever index --ray`` does without an address, so the workers
inherit the AWS_* environment the ``s3`` fixture sets."""

from __future__ import annotations

import os
import shutil

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("lance")

from example_plugin_host import register_example_plugin
from repo_paths import REPO, SAMPLES
from s3_server import s3, s3_server  # noqa: F401 - fixtures

from retriever import Retriever
from retriever.distributed import RayIndexOptions

QUERIES = ("IBAN bank transfer", "analytics stack migration", "DER encoding of a structure",
           "kiln technician programme")


def _hits(r: Retriever) -> list:
    return [[(h.doc_id, h.page, h.score, tuple((g.bbox, g.text) for g in h.regions))
             for h in hits] for hits in r.search_many(list(QUERIES), k=5)]


def test_ray_index_into_s3_equals_local(s3, tmp_path, monkeypatch, real_pdf):
    register_example_plugin()
    # the workers Ray starts import retriever and the example plugin as this process does
    paths = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "plugins" / "example_plugin")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        paths + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    folder = tmp_path / "in"
    folder.mkdir()
    files = [shutil.copy(SAMPLES / n, folder / n)
             for n in ("invoice.pdf", "slide.pdf", "scanned-letter.png")]
    files.append(shutil.copy(real_pdf, folder / real_pdf.name))  # 36 real pages
    with Retriever("docs", data_dir=tmp_path / "local", encoder="example/hashing") as local:
        assert local.index(files).ok
        want = _hits(local)
        assert all(want) and any(hit[3] for hits in want for hit in hits)
        pages = local.info()["pages"]
    options = RayIndexOptions(setup=register_example_plugin, batch_pages=8, commit_pages=16)
    with s3.recorded_requests() as requests, Retriever(
            "docs", data_dir=s3.uri, encoder="example/hashing") as remote:
        report = remote.index(files, ray=options)
        assert report.ok, report.failed
        assert report.pages == report.encoded_pages == pages
    assert not ray.is_initialized()  # the cluster it started is stopped
    # several commits (the groups went in as they were ready), each a new version put
    # only if no other writer made it first, as the coordinator's Lance commits promise
    manifests = [q for q in requests if q.get("method") == "PUT"
                 and "/_versions/" in q.get("url", "") and q["url"].endswith(".manifest")]
    assert len(manifests) > 2
    for put in manifests:
        headers = {k.lower(): v for k, v in (put.get("headers") or {}).items()}
        assert headers.get("if-none-match") == "*", put["url"]
    with Retriever("docs", data_dir=s3.uri) as reader:  # a plain reader of the bucket
        assert reader.info()["pages"] == pages
        assert _hits(reader) == want
        check = reader.indexer.verify()
        assert check.ok, check.problems
