"""A local Ray cluster (2 CPUs) per module, whose workers import retriever and the
example plugin as the test process does."""

from __future__ import annotations

import os

import pytest

from repo_paths import REPO


@pytest.fixture(scope="module")
def cluster():
    # the actors import retriever and the example plugin as this process does
    paths = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "plugins" / "example_plugin")]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
