"""Distributed indexing on a local Ray cluster (2 CPUs): the samples indexed through Ray
Data into a LanceDB collection give the same pages and hits as a local run, a re-run
encodes nothing, and a changed file replaces its old version in the same commit."""

from __future__ import annotations

import shutil

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("lance")
pytest.importorskip("ray.data")

from example_plugin_host import register_example_plugin
from repo_paths import SAMPLES

from retriever import Retriever
from retriever.distributed import RayIndexOptions

pytestmark = pytest.mark.usefixtures("example_plugin")

FILES = ("annual-report.pdf", "invoice.pdf", "slide.pdf")
QUERIES = ("invoice total due", "annual revenue growth", "kiln technician programme")


def _hits(r: Retriever) -> list:
    return [[(h.doc_id, h.page, round(h.score, 5), tuple(x.text for x in h.regions))
             for h in r.search(q, k=3)] for q in QUERIES]


def test_ray_index_equals_local_and_reruns_skip(cluster, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    files = [shutil.copy(SAMPLES / name, folder / name) for name in FILES]
    options = RayIndexOptions(setup=register_example_plugin)
    with Retriever("local", data_dir=tmp_path, encoder="example/hashing") as local:
        assert local.index(files).ok
        want = _hits(local)
    from retriever.distributed import ray_index
    from retriever.plugin_host import get_registry

    registry, built, starts = get_registry(), [], []
    create, start = registry.create, ray_index._start
    monkeypatch.setattr(registry, "create", lambda kind, name, **kw: (
        built.append(name) if kind == "encoder" else None) or create(kind, name, **kw))
    monkeypatch.setattr(ray_index, "_start", lambda o: starts.append(1) or start(o))
    with Retriever("ray", data_dir=tmp_path, encoder="example/hashing") as r:
        report = r.index([*files, folder / "missing.pdf"], ray=options)
        assert built == []  # the model is built on the cluster, never by the coordinator
        assert sorted(report.indexed) == sorted(str(f.resolve()) for f in files)
        assert [f.reason for f in report.failed] == ["not-found"]
        assert report.pages == report.encoded_pages == local.info()["pages"]
        assert _hits(r) == want
        assert len(r.indexer.paths()) == len(FILES)  # one document per file

        again = r.index(files, ray=options)
        assert again.encoded_pages == 0 and len(again.unchanged) == len(FILES)
        assert len(starts) == 1  # nothing to encode: the re-run needed no cluster

        changed = folder / FILES[1]
        changed.write_bytes(changed.read_bytes() + b"\n% revised\n")
        third = r.index(files, ray=options)
        assert third.replaced == [str(changed.resolve())]
        assert r.info()["documents"] == len(FILES)  # the old version went in the same commit
        assert r.info()["pages"] == local.info()["pages"]


def test_an_encoder_that_cannot_be_built_on_the_cluster_is_the_same_error(cluster, tmp_path):
    from retriever.errors import UsageError

    options = RayIndexOptions(setup=register_example_plugin)
    with Retriever("bad", data_dir=tmp_path, encoder="example/hashing",
                   encoder_options={"no_such_option": 1}) as r:
        with pytest.raises(UsageError, match="no_such_option"):
            r.index([SAMPLES / "invoice.pdf"], ray=options)
        assert not r.exists  # no collection is made for an encoder that does not build
