"""Fixtures for the HTTP server: an app over a data directory holding collection "docs"
(the test plugin's hashing encoder: no model to load), and FastAPI TestClients."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from repo_paths import SAMPLES
from retriever import Retriever

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from example_plugin_host import register_example_plugin

from fastapi.testclient import TestClient  # noqa: E402

from retriever.server import create_app  # noqa: E402

ENCODER = "example/hashing"


@pytest.fixture(autouse=True)
def _every_test_sees_the_example_plugin(example_plugin) -> None:
    """(a conftest's ``pytestmark`` would not reach the test modules)"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A data directory with "docs" (annual report + invoice), made through the SDK."""
    register_example_plugin()
    home = tmp_path_factory.mktemp("server-home")
    docs = home.parent / f"{home.name}-sources"
    docs.mkdir()
    for name in ("annual-report.pdf", "invoice.pdf"):
        shutil.copy(SAMPLES / name, docs / name)
    with Retriever("docs", data_dir=home, encoder=ENCODER) as r:
        assert r.index([docs], workers=0).ok
    return home


@pytest.fixture
def home(seeded: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded data directory (tests upload and delete)."""
    copy = tmp_path / "home"
    shutil.copytree(seeded, copy)
    return copy


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(data_dir: Path, **options: Any) -> TestClient:
        options.setdefault("encoder", ENCODER)
        options.setdefault("ocr", None)
        client = TestClient(create_app(data_dir, **options))
        client.__enter__()  # runs the lifespan: collections are closed at the end
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(home: Path, make_client) -> TestClient:
    return make_client(home)
