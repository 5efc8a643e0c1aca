"""The plugin host: finds plugins, collects what they register, once and lazily.

Built-in plugins are named here as dotted strings and loaded exactly like third-party ones,
which come from the ``retriever`` entry-point group. ``RETRIEVER_LOAD_PLUGINS`` limits which
third-party plugins load (a comma list of entry-point names; empty loads none), which tests
use to keep installed plugins out.
"""

from __future__ import annotations

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "list_plugins",
    "reset",
]

import importlib
import os
import threading
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UsageError
from .specs import ComponentSpec

ENTRY_POINT_GROUP = "retriever"
BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.text",
    "plugins.tesseract",
    "plugins.colpali",
    "plugins.clip",
    "plugins.vitamin",
    "indexers.lancedb",
    "indexers.faiss",
    "indexers.memory",
)
_REGISTER_HOOKS = {
    "encoder": "register_encoders",
    "indexer": "register_indexers",
    "ocr": "register_ocr_engines",
    "compressor": "register_compressors",
}

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
_versions: dict[str, str] = {}  # plugin name -> version, filled as plugins load


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


def _own_version() -> str:
    try:
        return metadata.version("vision-retriever")
    except metadata.PackageNotFoundError:
        return "0+source"


def _load_third_party(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get("RETRIEVER_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # one broken plugin must not take the tool down
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}",
                hint="uninstall it, or set RETRIEVER_LOAD_PLUGINS to the plugins you want",
            ) from exc
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else "?"
        _versions[ep.name] = version



def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            for dotted in BUILTIN_PLUGINS:
                pm.register(importlib.import_module(dotted), name=dotted)
                _versions[dotted] = _own_version()
            _load_third_party(pm)
            _pm = pm
        return _pm


class Registry:
    """Every spec that plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {k: {} for k in _REGISTER_HOOKS}
        for kind, hook_name in _REGISTER_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                plugin_name = impl.plugin_name
                impl.function(register=self._collector(kind, plugin_name))

    def _collector(self, kind: str, plugin_name: str):
        def register(spec: ComponentSpec) -> None:
            if not isinstance(spec, ComponentSpec) or spec.kind != kind:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {spec!r} from its {kind} hook",
                    hint=f"register a {kind} spec from retriever.specs",
                )
            table = self._specs[kind]
            if spec.name in table:
                first = table[spec.name].plugin
                raise PluginError(
                    f"{kind} name {spec.name!r} is registered by both {first!r} and "
                    f"{plugin_name!r}",
                    hint="uninstall one of the two plugins, or rename the component",
                )
            table[spec.name] = replace(spec, plugin=plugin_name)

        return register

    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def specs(self, kind: str) -> list[ComponentSpec]:
        return [self._specs[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> ComponentSpec:
        try:
            return self._specs[kind][name]
        except KeyError:
            known = ", ".join(self.names(kind)) or "none"
            raise UsageError(
                f"unknown {kind} {name!r}", hint=f"available: {known}; see `retriever plugins list`"
            ) from None

    def create(self, kind: str, name: str, **options: Any) -> Any:
        return self.get(kind, name).create(**options)


def get_registry() -> Registry:
    """The process-wide registry; plugin hooks run once, on first use."""
    global _registry
    pm = get_plugin_manager()
    with _lock:
        if _registry is None:
            _registry = Registry(pm)
        return _registry


def list_plugins() -> list[PluginInfo]:
    pm = get_plugin_manager()
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, _versions.get(name, "?"), hooks, name in BUILTIN_PLUGINS))
    return infos


def reset() -> None:
    """Forget loaded plugins (tests use this after changing the environment)."""
    global _pm, _registry
    with _lock:
        _pm = None
        _registry = None
        _versions.clear()
