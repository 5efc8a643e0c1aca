"""The plugin host: finds plugins, collects what they register, once and lazily.

Built-in plugins are named here as dotted strings and loaded exactly like third-party ones,
which come from the ``retriever`` entry-point group. ``RETRIEVER_LOAD_PLUGINS`` limits which
third-party plugins load (a comma list of entry-point names; empty loads none), which tests
use to keep installed plugins out.

A broken third-party plugin (it fails to import, raises inside a hook, registers something
invalid, or implements a hook that does not exist, such as a misspelled name) must not take
the tool down: it is unregistered, logged as a warning naming it and the error, and listed
as broken by ``list_plugins`` (so ``plugins list`` and ``doctor`` show it).
``RETRIEVER_RAISE_PLUGIN_ERRORS=1`` lets the original exception through instead, for plugin
authors who want the traceback. Built-in plugins are the project's own code: their errors
always propagate.
"""

from __future__ import annotations

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "RAISE_ENV",
    "Registry",
    "add_commands",
    "get_plugin_manager",
    "get_registry",
    "list_plugins",
    "raise_plugin_errors",
    "reset",
]

import difflib
import importlib
import logging
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
RAISE_ENV = "RETRIEVER_RAISE_PLUGIN_ERRORS"
BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.text",
    "plugins.tesseract",
    "plugins.colpali",
    "plugins.clip",
    "plugins.vitamin",
    "plugins.compression",
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

_log = logging.getLogger("retriever.plugins")
# Re-entrant: a plugin found broken while the manager or registry is built under the lock
# is unregistered and recorded under it too.
_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
_versions: dict[str, str] = {}  # plugin name -> version, filled as plugins load
_distributions: dict[str, str] = {}  # third-party plugin name -> its distribution's name
_broken: dict[str, PluginInfo] = {}  # plugin name -> why it was not loaded


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    error: str | None = None  # set when the plugin is broken and was not loaded
    distribution: str | None = None  # the installed package providing it (third-party)

    @property
    def broken(self) -> bool:
        return self.error is not None


def raise_plugin_errors() -> bool:
    """True when ``RETRIEVER_RAISE_PLUGIN_ERRORS`` asks for plugin exceptions unchanged."""
    return os.environ.get(RAISE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _mark_broken(pm: pluggy.PluginManager, name: str, error: str) -> None:
    """Unregister a third-party plugin, remember why and warn, naming it and the error."""
    with _lock:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        dist = _distributions.get(name)
        _broken[name] = PluginInfo(name, _versions.get(name, "?"), (), False, error, dist)
    how = f"uninstall {dist}" if dist else "uninstall it"
    _log.warning(
        "plugin %r is broken and was not loaded: %s (hint: %s, or leave it out with "
        "RETRIEVER_LOAD_PLUGINS; %s=1 shows the traceback)", name, error, how, RAISE_ENV)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks the plugin implements that no hookspec declares (pluggy's check_pending,
    for one plugin): a misspelled name would otherwise never be called, silently."""
    unknown = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec():
            continue
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if any(not impl.optionalhook for impl in impls):
            unknown.append(caller.name)
    return unknown


def _check_hooks(pm: pluggy.PluginManager, name: str, plugin: object) -> str | None:
    """None when every hook the plugin implements exists, else what is wrong with it."""
    unknown = _unknown_hooks(pm, plugin)
    if not unknown:
        return None
    known = [n for n in dir(hookspecs) if n.startswith("register_")]
    parts, guessed = [], True
    for hook in unknown:
        close = difflib.get_close_matches(hook, known, n=1)
        guessed = guessed and bool(close)
        parts.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listing = "" if guessed else f"; the hooks are {', '.join(known)}"
    return f"implements unknown hook {', '.join(parts)}{listing}"


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
        dist = getattr(ep, "dist", None)
        _versions[ep.name] = dist.version if dist is not None else "?"
        if dist is not None:
            _distributions[ep.name] = dist.name
        try:
            plugin = ep.load()
        except Exception as exc:  # one broken plugin must not take the tool down
            if raise_plugin_errors():
                raise
            _mark_broken(pm, ep.name, f"{ep.value} failed to import: "
                                      f"{type(exc).__name__}: {exc}")
            continue
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:  # e.g. a hook argument not in the spec
            if raise_plugin_errors():
                raise PluginError(f"plugin {ep.name!r}: {exc}") from exc
            _mark_broken(pm, ep.name, f"invalid hook implementation: {exc}")
            continue
        problem = _check_hooks(pm, ep.name, plugin)
        if problem is not None:
            if raise_plugin_errors():
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) {problem}",
                                  hint="rename the function to the hook it means")
            _mark_broken(pm, ep.name, problem)


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


def _call(impl: Any, **kwargs: Any) -> None:
    # Only the arguments the implementation names, as pluggy itself passes them.
    impl.function(**{arg: kwargs[arg] for arg in impl.argnames})


def _run_hook(pm: pluggy.PluginManager, impl: Any, hook_name: str, **kwargs: Any) -> bool:
    """Run one plugin's implementation; False when a third-party one failed (now broken)."""
    try:
        _call(impl, **kwargs)
    except Exception as exc:
        if impl.plugin_name in BUILTIN_PLUGINS or raise_plugin_errors():
            raise
        detail = exc.message if isinstance(exc, PluginError) else (
            f"{hook_name} raised {type(exc).__name__}: {exc}")
        _mark_broken(pm, impl.plugin_name, detail)
        return False
    return True


def add_commands(cli: Any) -> None:
    """Let every plugin add its commands to ``cli``, one plugin at a time, so a broken one
    only loses its own commands."""
    pm = get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        _run_hook(pm, impl, "register_commands", cli=cli)


class Registry:
    """Every spec that plugins registered, by kind and name.

    All or nothing per plugin: a third-party plugin that fails in any register hook has
    every spec it registered dropped, and is reported broken.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {k: {} for k in _REGISTER_HOOKS}
        for kind, hook_name in _REGISTER_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                plugin_name = impl.plugin_name
                if pm.get_plugin(plugin_name) is None:  # broken in an earlier hook
                    continue
                register = self._collector(kind, plugin_name)
                if not _run_hook(pm, impl, hook_name, register=register):
                    self._drop(plugin_name)

    def _drop(self, plugin_name: str) -> None:
        for table in self._specs.values():
            for name in [n for n, spec in table.items() if spec.plugin == plugin_name]:
                del table[name]

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
    """Loaded plugins, then broken ones (``error`` set). A plugin failing inside a register
    hook is known only once those hooks ran: call ``get_registry()`` first to include it."""
    pm = get_plugin_manager()
    infos = []
    with _lock:
        for name, plugin in pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
            infos.append(PluginInfo(name, _versions.get(name, "?"), hooks,
                                    name in BUILTIN_PLUGINS,
                                    distribution=_distributions.get(name)))
        infos.extend(_broken.values())
    return infos


def reset() -> None:
    """Forget loaded plugins (tests use this after changing the environment)."""
    global _pm, _registry
    with _lock:
        _pm = None
        _registry = None
        _versions.clear()
        _distributions.clear()
        _broken.clear()
