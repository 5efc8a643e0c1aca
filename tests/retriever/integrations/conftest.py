"""The adapters' tests share one real collection of the samples, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import rag_collection


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from retriever import plugin_host

    home = tmp_path_factory.mktemp("integrations")
    # the isolation the per-test autouse fixture gives, which has not run yet at session
    # scope: built-in plugins only, and the session's cache for the ONNX export
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RETRIEVER_LOAD_PLUGINS", "")
        env.setenv("RETRIEVER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        env.setenv("OMP_THREAD_LIMIT", "1")
        plugin_host.reset()
        try:
            rag_collection.build(home)
        finally:
            plugin_host.reset()
    return home

