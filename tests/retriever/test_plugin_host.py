"""The plugin host loads built-ins through the same hooks as third-party plugins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from retriever import plugin_host
from retriever.errors import PluginError, UsageError
from retriever.hookspecs import hookimpl
from retriever.specs import EncoderSpec, IndexerSpec

from repo_paths import REPO


def test_builtins_register_through_hooks():
    registry = plugin_host.get_registry()
    assert "text/minilm" in registry.names("encoder")
    assert {"lancedb", "memory"} <= set(registry.names("indexer"))
    assert "tesseract" in registry.names("ocr")
    assert registry.get("encoder", "text/minilm").plugin == "plugins.text"
    names = {info.name for info in plugin_host.list_plugins()}
    assert set(plugin_host.BUILTIN_PLUGINS) <= names


def test_registry_is_built_once():
    assert plugin_host.get_registry() is plugin_host.get_registry()
    assert plugin_host.get_plugin_manager() is plugin_host.get_plugin_manager()


def test_unknown_component_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown encoder 'nope'") as info:
        plugin_host.get_registry().get("encoder", "nope")
    assert "text/minilm" in info.value.hint


class _Clash:
    @hookimpl
    def register_encoders(self, register):
        register(EncoderSpec(name="text/minilm", factory=lambda: None))


class _WrongKind:
    @hookimpl
    def register_encoders(self, register):
        register(IndexerSpec(name="oops", factory=lambda: None))


def test_duplicate_names_are_an_error_naming_both_plugins():
    pm = plugin_host.get_plugin_manager()
    pm.register(_Clash(), name="clashing-plugin")
    with pytest.raises(PluginError) as info:
        plugin_host.Registry(pm)
    assert "plugins.text" in info.value.message and "clashing-plugin" in info.value.message


def test_a_spec_of_the_wrong_kind_is_refused():
    pm = plugin_host.get_plugin_manager()
    pm.register(_WrongKind(), name="confused-plugin")
    with pytest.raises(PluginError, match="confused-plugin"):
        plugin_host.Registry(pm)


def test_importing_retriever_and_help_do_not_import_torch():
    code = (
        "import sys, retriever\n"
        "from retriever import Retriever, MultiVector\n"
        "from cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "from retriever.plugin_host import get_registry\nget_registry()\n"
        "heavy = [m for m in ('torch', 'transformers', 'lancedb') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_unknown_options_are_a_usage_error_listing_the_known_ones():
    with pytest.raises(UsageError, match="has no option") as info:
        plugin_host.get_registry().create("encoder", "text/minilm", colour="red")
    assert "batch_size" in info.value.hint and "device" in info.value.hint
