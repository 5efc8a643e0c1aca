"""A distributed indexing job whose encoder actor is SIGKILLed mid-job (before its batch
is written, and after it is written but before the coordinator hears of it) ends with
every page stored exactly once: the job completes on Ray's retries, or a re-run does."""

from __future__ import annotations

import shutil
from functools import partial

import pytest

pytest.importorskip("ray.data")
pytest.importorskip("lance")

from ray_faults import kill_once
from repo_paths import SAMPLES

from retriever import Retriever
from retriever.distributed import RayIndexOptions

pytestmark = pytest.mark.usefixtures("example_plugin")

FILES = ("annual-report.pdf", "invoice.pdf", "slide.pdf")


@pytest.mark.parametrize("when", ["encode", "written"])
def test_killed_encoder_loses_and_duplicates_nothing(cluster, tmp_path, when):
    folder = tmp_path / "in"
    folder.mkdir()
    files = [shutil.copy(SAMPLES / name, folder / name) for name in FILES]
    with Retriever("local", data_dir=tmp_path, encoder="example/hashing") as local:
        assert local.index(files).ok
        want = (local.indexer.count(), local.indexer.documents())
    marker = tmp_path / "killed"
    # one page per batch: the job has several batches, and the kill hits one of them
    options = RayIndexOptions(setup=partial(kill_once, str(marker), when), batch_pages=1,
                              commit_pages=1)
    with Retriever("ray", data_dir=tmp_path, encoder="example/hashing") as r:
        report = r.index(files, ray=options)
        assert marker.exists()  # a worker did die
        if not report.ok:  # Ray gave up on the batch: the re-run finishes the job
            again = r.index(files, ray=options)
            assert again.ok, again.failed
        check = r.indexer.verify()  # reads every page: each key once, vectors readable
        assert check.ok, check.problems
        assert (r.indexer.count(), r.indexer.documents()) == want  # nothing lost or twice
