"""Fixtures shared by every test package.

Each test gets its own data directory (the session shares one cache directory), and
third-party plugins installed on the machine are not loaded (``RETRIEVER_LOAD_PLUGINS``
empty), so tests see only the built-ins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_paths import REPO, SAMPLES  # noqa: F401 - re-exported for fixtures


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    from retriever import plugin_host

    home = tmp_path_factory.mktemp("retriever-home")
    monkeypatch.setenv("RETRIEVER_HOME", str(home))
    monkeypatch.setenv("RETRIEVER_LOAD_PLUGINS", "")
    # one cache (the text encoder's ONNX export) for the whole session: made once, not
    # per test, and never in the user's own cache directory
    monkeypatch.setenv("RETRIEVER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    plugin_host.reset()
    yield home
    plugin_host.reset()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def real_pdf() -> Path:
    """A real PDF with a text layer that Debian ships (see ../shared/ENVIRONMENT.md)."""
    path = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")
    if not path.exists():
        pytest.skip(f"{path} not installed (apt-get install libtasn1-doc)")
    return path


@pytest.fixture
def example_plugin() -> None:
    """The example plugin registered in-process (tests/example_plugin_host.py)."""
    from example_plugin_host import register_example_plugin

    register_example_plugin()
