"""LanceDB collections on object storage (S3 through a moto server on loopback).

The same files indexed into ``s3://bucket/prefix`` and into a local directory give the
same hits; list, info, delete, optimize and verify work on the URI; a re-run skips
unchanged files; the manifest lives in the bucket; lock and staging stay local; FAISS
refuses a URI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import CollectionNotFoundError, ExitCode, UsageError
from retriever.locking import lock_path
from retriever.maintenance import collection_storage, optimize_collection
from retriever.integrity import verify_collection
from retriever.storage import ObjectStore, object_store
from s3_server import s3, s3_server  # noqa: F401 - fixtures

FILES = [SAMPLES / n for n in ("invoice.pdf", "slide.pdf", "annual-report.pdf")]
QUERIES = ["IBAN bank transfer", "dividend per share", "analytics stack migration",
           "renewable energy share"]


def _index(data_dir: str | Path, name: str = "docs", **kwargs) -> dict:
    with Retriever(name, data_dir=data_dir, encoder="example/hashing", ocr=None,
                   **kwargs) as r:
        return r.index(FILES, workers=0).to_dict()


def _hits(data_dir: str | Path, name: str = "docs") -> list:
    with Retriever(name, data_dir=data_dir) as r:
        return [[(h.doc_id, h.page, h.score, [(g.bbox, g.text, g.score) for g in h.regions])
                 for h in hits] for hits in r.search_many(QUERIES, k=5)]


def test_hits_on_s3_equal_those_of_a_local_collection(s3, tmp_path):
    local = tmp_path / "local"
    assert len(_index(s3.uri)["indexed"]) == len(FILES)
    assert len(_index(local)["indexed"]) == len(FILES)
    remote_hits = _hits(s3.uri)
    assert remote_hits == _hits(local)  # same pages, order, scores and regions
    assert all(remote_hits) and any(hit[3] for hits in remote_hits for hit in hits)
    # the table, its manifest included (schema metadata), is in the bucket, not on disk
    keys = s3.keys("retriever/collections/docs/lancedb/pages.lance/")
    assert any("/_versions/" in k for k in keys) and any(k.endswith(".lance") for k in keys)
    assert not (Path.cwd() / "s3:").exists()


def test_rerun_skips_unchanged_files_and_info_list_delete_work(s3):
    _index(s3.uri)
    with Retriever("docs", data_dir=s3.uri) as r:  # reopened from the stored manifest
        again = r.index(FILES, workers=0)
        info = r.info()
    assert again.indexed == [] and len(again.unchanged) == len(FILES)
    assert info["path"] == f"{s3.uri}/collections/docs" and info["backend"] == "lancedb"
    assert info["documents"] == len(FILES) and info["encoder"]["name"] == "example/hashing"
    _index(s3.uri, "other")
    assert Retriever.list_collections(s3.uri) == ["docs", "other"]
    Retriever.delete_collection("docs", s3.uri)
    assert Retriever.list_collections(s3.uri) == ["other"]
    assert s3.keys("retriever/collections/docs/") == []
    with pytest.raises(CollectionNotFoundError):
        Retriever.delete_collection("docs", s3.uri)
    with pytest.raises(CollectionNotFoundError):
        Retriever("docs", data_dir=s3.uri).search("invoice")


def test_storage_options_instead_of_the_environment(s3, monkeypatch):
    """Endpoint and keys given as Lance storage options reach Lance and the listing."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {"aws_endpoint": s3.endpoint, "allow_http": "true",
               "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    assert len(_index(s3.uri, storage_options=options)["indexed"]) == len(FILES)
    assert Retriever.list_collections(s3.uri, options) == ["docs"]
    with Retriever("docs", data_dir=s3.uri, storage_options=options) as r:
        assert r.search("IBAN bank transfer", k=1)[0].source.endswith("invoice.pdf")


def test_optimize_verify_and_storage_stats_on_s3(s3):
    _index(s3.uri)
    with Retriever("docs", data_dir=s3.uri) as r:
        stats = collection_storage(r)
        assert stats is not None and stats.pages == 5 and stats.bytes > 0
        report = optimize_collection(r)
        assert report.after.fragments == 1 and report.after.pages == 5
        assert verify_collection(r).ok


def test_lock_and_staging_are_local_and_keyed_by_the_uri(s3, tmp_path):
    store = object_store(s3.uri)
    assert store is not None and store.uri == s3.uri
    other = ObjectStore(f"s3://{s3.bucket}/elsewhere")
    assert store.local_dir != other.local_dir  # two prefixes never share local files
    with Retriever("docs", data_dir=s3.uri, encoder="example/hashing", ocr=None) as r:
        r.index(FILES[:1], workers=0)
        assert r.root == store.local_dir and str(r.root).startswith(str(tmp_path.parent))
        assert lock_path(r.root, "docs").is_relative_to(store.local_dir)
        staging = r.indexer.staging_dir  # type: ignore[attr-defined]
        assert staging.is_relative_to(store.local_dir)


def test_faiss_refuses_a_uri(s3):
    with pytest.raises(UsageError) as caught:
        Retriever("docs", data_dir=s3.uri, indexer="faiss")
    assert caught.value.exit_code == ExitCode.USAGE == 2
    assert "faiss" in caught.value.message and s3.keys() == []


@pytest.mark.parametrize("data_dir, options", [
    ("/tmp/x", {"aws_region": "eu-west-1"}),  # options that would do nothing
    ("http://example.invalid/x", None),  # a URI scheme that is not object storage
    ("s3:///prefix", None),  # no bucket
])
def test_bad_locations_are_usage_errors(data_dir, options):
    with pytest.raises(UsageError):
        Retriever("docs", data_dir=data_dir, storage_options=options)


def test_the_server_honours_conditional_puts(s3):
    """Lance commits each version with If-None-Match: * (README); moto must refuse the
    second put of a key as S3 does, or these tests would not model S3's guarantee."""
    from botocore.exceptions import ClientError

    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=s3.bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_every_commit_writes_its_version_with_a_conditional_put(s3):
    """What the README promises: Lance commits a version by putting its manifest with
    If-None-Match: *, so a commit never overwrites one that another writer made."""
    with s3.recorded_requests() as requests:
        _index(s3.uri)
        with Retriever("docs", data_dir=s3.uri) as r:
            r.delete([str(FILES[0])])
    manifests = [q for q in requests if q.get("method") == "PUT"
                 and "/_versions/" in q.get("url", "") and q["url"].endswith(".manifest")]
    assert len(manifests) >= 1 + len(FILES) + 1  # create, one per file, the delete
    for put in manifests:
        headers = {k.lower(): v for k, v in (put.get("headers") or {}).items()}
        assert headers.get("if-none-match") == "*", put["url"]


def test_an_interrupted_run_on_s3_resumes_from_its_local_staging(s3, monkeypatch):
    """Staged pages wait on the local disk, never in the bucket, and the next run on
    this machine commits them without encoding them again."""
    from retriever import pipeline
    from retriever.errors import IndexInterrupted

    monkeypatch.setattr(pipeline, "PAGE_BATCH", 1)  # one batch per page
    report_pdf = SAMPLES / "annual-report.pdf"  # three pages
    with Retriever("docs", data_dir=s3.uri, encoder="example/hashing", ocr=None) as r:
        r.index(FILES[:1], workers=0)
        encoder, real, calls = r.encoder, r.encoder.encode_pages, {"n": 0}

        def encode_pages(pages):  # Ctrl-C while encoding the second page
            calls["n"] += 1
            if calls["n"] > 1:
                raise KeyboardInterrupt
            return real(pages)

        encoder.encode_pages = encode_pages  # type: ignore[method-assign]
        with pytest.raises(IndexInterrupted):
            r.index([report_pdf], workers=0)
        assert list(r.pending().values()) == [1]
        staging = r.indexer.staging_dir  # type: ignore[attr-defined]
        assert any(staging.rglob("*.npz"))
    assert not [k for k in s3.keys() if "staging" in k]
    with Retriever("docs", data_dir=s3.uri, ocr=None) as r:
        report = r.index([report_pdf], workers=0)
        assert (report.pages, report.encoded_pages, report.reused_pages) == (3, 2, 1)
        assert r.pending() == {} and len(r.documents()) == 2
