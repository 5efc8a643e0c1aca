"""The adapters' tests share one real collection of the samples, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import rag_collection
from isolation import isolated_build


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("integrations")
    # the isolation the per-test autouse fixture gives, which has not run yet here
    with isolated_build(tmp_path_factory):
        rag_collection.build(home)
    return home

