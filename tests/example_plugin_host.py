"""The suite's third-party plugin (tests/plugins/example_plugin: the model-free
``example/hashing`` encoder and the ``example/pairs`` compressor), registered in-process
the way an installed plugin's entry point would be.

Modules that use it say ``pytestmark = pytest.mark.usefixtures("example_plugin")`` (the
fixture is in conftest.py); module-scoped fixtures that build a collection call
``register_example_plugin()`` first, since they run before any test's fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repo_paths import REPO, SAMPLES

sys.path.insert(0, str(REPO / "tests" / "plugins" / "example_plugin"))
import retriever_example_plugin  # noqa: E402

__all__ = ["hashing_collection", "register_example_plugin", "retriever_example_plugin"]


def register_example_plugin() -> None:
    from retriever import plugin_host

    manager = plugin_host.get_plugin_manager()
    if manager.get_plugin("example") is None:
        manager.register(retriever_example_plugin, name="example")


def hashing_collection(home: Path, files: Sequence[str], name: str = "docs",
                       **index_options: Any) -> Path:
    """Collection ``name`` in ``home`` of the sample ``files``, indexed with the example
    plugin's model-free ``example/hashing`` encoder (the plugin registered first)."""
    from retriever import Retriever

    register_example_plugin()
    with Retriever(name, data_dir=home, encoder="example/hashing") as r:
        assert r.index([SAMPLES / f for f in files], **index_options).ok
    return home
