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


def test_duplicate_names_are_an_error_naming_both_plugins(monkeypatch):
    monkeypatch.setenv("RETRIEVER_RAISE_PLUGIN_ERRORS", "1")
    pm = plugin_host.get_plugin_manager()
    pm.register(_Clash(), name="clashing-plugin")
    with pytest.raises(PluginError) as info:
        plugin_host.Registry(pm)
    assert "plugins.text" in info.value.message and "clashing-plugin" in info.value.message


def test_a_spec_of_the_wrong_kind_is_refused(monkeypatch):
    monkeypatch.setenv("RETRIEVER_RAISE_PLUGIN_ERRORS", "1")
    pm = plugin_host.get_plugin_manager()
    pm.register(_WrongKind(), name="confused-plugin")
    with pytest.raises(PluginError, match="confused-plugin"):
        plugin_host.Registry(pm)


class _Raising:
    @hookimpl
    def register_indexers(self, register):
        register(IndexerSpec(name="half-done", factory=lambda: None))

    @hookimpl
    def register_encoders(self, register):
        raise RuntimeError("no licence key")


def _broken(name: str) -> plugin_host.PluginInfo:
    infos = {info.name: info for info in plugin_host.list_plugins()}
    assert infos[name].broken, infos[name]
    return infos[name]


def test_an_error_inside_a_third_party_hook_is_a_warning_and_the_rest_loads(caplog):
    plugin_host.get_plugin_manager().register(_Raising(), name="raising-plugin")
    registry = plugin_host.get_registry()
    assert "text/minilm" in registry.names("encoder")
    # all or nothing: what the plugin registered before failing is dropped too
    assert "half-done" not in registry.names("indexer")
    error = _broken("raising-plugin").error
    assert "register_encoders" in error and "RuntimeError: no licence key" in error
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "'raising-plugin'" in warning and "no licence key" in warning
    assert "RETRIEVER_RAISE_PLUGIN_ERRORS" in warning
    assert not any(i.broken for i in plugin_host.list_plugins() if i.builtin)


def test_raise_plugin_errors_lets_the_hook_error_through(monkeypatch):
    monkeypatch.setenv("RETRIEVER_RAISE_PLUGIN_ERRORS", "1")
    plugin_host.get_plugin_manager().register(_Raising(), name="raising-plugin")
    with pytest.raises(RuntimeError, match="no licence key"):
        plugin_host.get_registry()


def test_a_third_party_clash_or_wrong_kind_marks_that_plugin_broken():
    pm = plugin_host.get_plugin_manager()
    pm.register(_Clash(), name="clashing-plugin")
    pm.register(_WrongKind(), name="confused-plugin")
    registry = plugin_host.get_registry()
    assert registry.get("encoder", "text/minilm").plugin == "plugins.text"
    assert "plugins.text" in _broken("clashing-plugin").error
    assert "oops" in _broken("confused-plugin").error


class _Commands:
    @hookimpl
    def register_commands(self, cli):
        raise ValueError("no such command group")


def test_an_error_inside_register_commands_spares_the_other_plugins():
    added = []

    class _Fine:
        @hookimpl
        def register_commands(self, cli):
            added.append(cli)

    pm = plugin_host.get_plugin_manager()
    pm.register(_Fine(), name="fine-plugin")
    pm.register(_Commands(), name="commands-plugin")
    plugin_host.add_commands("the-app")
    assert added == ["the-app"]
    assert "no such command group" in _broken("commands-plugin").error


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
