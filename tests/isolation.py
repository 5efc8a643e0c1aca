"""The test environment of conftest's ``isolated_environment``, for module- and
session-scoped fixtures that build a collection before any test's fixtures run:
built-in plugins only, the session's shared cache (the text encoder's ONNX export), one
tesseract thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def isolated_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from retriever import plugin_host

    with pytest.MonkeyPatch.context() as env:
        env.setenv("RETRIEVER_LOAD_PLUGINS", "")
        env.setenv("RETRIEVER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        env.setenv("OMP_THREAD_LIMIT", "1")
        plugin_host.reset()
        try:
            yield
        finally:
            plugin_host.reset()
