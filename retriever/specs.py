"""Specs that plugins register: a name, a factory, a description and declared options.

Factories are called lazily, only when the component is used, so registering a plugin
never imports torch or loads weights. ``options`` declares every keyword option the
factory takes (``retriever.options.Option``): values are then parsed and checked in one
place, whether they come from the CLI, the SDK or a manifest. A spec that declares nothing
(``options=None``, third-party plugins written before declarations existed) is checked
against the factory's signature instead, and a CLI string is converted to the type of the
parameter's default where it has one.
"""

from __future__ import annotations

__all__ = ["ComponentSpec", "EncoderSpec", "IndexerSpec", "OCREngineSpec", "CompressorSpec"]

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UsageError
from .options import Option, options_help, resolve_options

_INFERABLE = (bool, int, float)  # default types a CLI string is converted to


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    factory: Callable[..., Any]
    description: str = ""
    #: default keyword options for the factory; user options override them
    defaults: dict[str, Any] = field(default_factory=dict)
    #: the plugin that registered it (filled in by the host)
    plugin: str = ""
    #: every option the factory takes; None: not declared (checked by signature)
    options: tuple[Option, ...] | None = None

    kind: str = "component"
    #: factory arguments that are not user options (an indexer's path and manifest)
    context_args: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How errors name the component: ``encoder 'colpali/v1.3'``."""
        return f"{self.kind} {self.name!r}"

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options or () if o.name == name), None)

    def parse_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` parsed and checked: against the declarations, else the signature."""
        if self.options is not None:
            return resolve_options(self.label, self.options, given)
        return self._parse_by_signature(dict(given))

    def split_options(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``given`` parsed, as (build-time options, the others).

        Build-time options shape what a collection stores (recorded in its manifest);
        options of an undeclared spec count as the others, since nothing says they do.
        """
        parsed = self.parse_options(given)
        build = {k: v for k, v in parsed.items()
                 if (option := self.option(k)) is not None and option.stage == "build"}
        return build, {k: v for k, v in parsed.items() if k not in build}

    def reopen_options(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """The options a manifest recorded, plus the ``legacy`` value of every build option
        it does not record (it was written before the option existed or changed default)."""
        legacy = {o.name: o.legacy for o in self.options or ()
                  if o.legacy is not None and o.stage == "build"}
        return {**legacy, **stored}

    def option_defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options or ()}

    def _parse_by_signature(self, given: dict[str, Any]) -> dict[str, Any]:
        try:
            params = [p for p in inspect.signature(self.factory).parameters.values()
                      if p.name not in self.context_args]
        except (TypeError, ValueError):  # some builtins have no signature; pass as given
            return given
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            known = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
            unknown = sorted(set(given) - known)
            if unknown:
                raise UsageError(
                    f"{self.label} has no option {', '.join(unknown)}",
                    hint=f"its options: {', '.join(sorted(known)) or 'none'}")
        defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        parsed = {}
        for name, value in given.items():
            default = defaults.get(name)
            kind = type(default)
            if isinstance(value, str) and kind in _INFERABLE:
                value = Option(name, kind, default).parse(value, self.label)
            parsed[name] = value
        return parsed

    def create(self, **arguments: Any) -> Any:
        context = {k: arguments.pop(k) for k in self.context_args if k in arguments}
        options = self.parse_options({**self.defaults, **arguments})
        try:
            return self.factory(**context, **options)
        except TypeError as exc:
            # A factory taking **options that forwards a bad keyword fails with a TypeError
            # from the call itself; that is the user's mistake, not a crash.
            if self.options is None and _is_call_error(exc):
                raise UsageError(f"{self.label}: {exc}",
                                 hint=f"check the -o options given to {self.name}") from exc
            raise

    def options_summary(self) -> str:
        """One line for listings; ``not declared`` when the spec declares none."""
        return "not declared" if self.options is None else options_help(self.options, True)


def _is_call_error(exc: TypeError) -> bool:
    text = str(exc)
    return any(marker in text for marker in (
        "unexpected keyword argument", "got multiple values for", "required keyword-only",
        "required positional argument"))


@dataclass(frozen=True)
class EncoderSpec(ComponentSpec):
    kind: str = "encoder"


@dataclass(frozen=True)
class IndexerSpec(ComponentSpec):
    """``factory(path: Path, manifest: Manifest | None, **options) -> Indexer``.

    Options declared with ``stage="search"`` are also keywords of the indexer's
    ``search(queries, k, **options)``, overriding for one search what it was opened with.
    """

    kind: str = "indexer"
    #: ``storage`` (a ``retriever.storage.ObjectStore``) is passed, with ``path`` a URI,
    #: only to a spec that declares ``object_storage``; other backends are local only
    context_args: tuple[str, ...] = ("path", "manifest", "storage")
    object_storage: bool = False

    def search_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` parsed for one search; an option of another stage is a UsageError.

        An undeclared spec's options come back as given: only its indexer's ``search``
        signature can tell what it takes.
        """
        if self.options is None:
            return dict(given)
        parsed = resolve_options(self.label, self.options, given)
        fixed = sorted(o.name for o in self.options if o.name in parsed and o.stage != "search")
        if fixed:
            raise UsageError(
                f"{self.label}: option {', '.join(fixed)} cannot change per search",
                hint="it is set when the collection is created or opened; per search: "
                     + (", ".join(o.name for o in self.options if o.stage == "search")
                        or "none"))
        return parsed


@dataclass(frozen=True)
class OCREngineSpec(ComponentSpec):
    kind: str = "ocr"


@dataclass(frozen=True)
class CompressorSpec(ComponentSpec):
    kind: str = "compressor"
