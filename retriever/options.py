"""Declared, typed component options, parsed in one place for the CLI, the SDK and manifests.

A component (encoder, indexer, OCR engine) declares its options as ``Option`` values on its
spec. Every value, whether a CLI string (``-o trust_remote_code=false``), an SDK value or
one read back from a manifest, goes through ``Option.parse``: a CLI string is turned into
the declared type, an SDK value is checked against it, and anything else is a UsageError
that names the component, the option and what it accepts. That is what keeps the string
"false" from ever reaching ``bool()``.
"""

from __future__ import annotations

__all__ = [
    "PATH",
    "Option",
    "OptionStage",
    "TRUE_WORDS",
    "FALSE_WORDS",
    "parse_pairs",
    "resolve_options",
    "options_help",
]

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import PluginError, UsageError

#: the declared type of an option that names a file or directory (given as text)
PATH = "path"
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})

#: when an option takes effect. ``build``: shapes what a collection stores (the encoder's
#: vectors, an index's type or dtype), so it is recorded in the manifest and fixed once the
#: collection exists. ``open``: a runtime setting of the component (device, cache dtype),
#: never stored. ``search``: a runtime setting that may also change per search (nprobe,
#: candidates, rerank).
OptionStage = Literal["build", "open", "search"]
_STAGES = ("build", "open", "search")
_TYPES: dict[Any, str] = {bool: "bool", int: "int", float: "float", str: "str", PATH: "path"}


@dataclass(frozen=True)
class Option:
    """One option: ``type`` is bool, int, float, str or ``PATH``; ``choices`` restricts it.

    ``default`` documents what the component does when the option is not given (``None``:
    "unset", which is then also accepted as a value). ``minimum`` bounds numbers.
    ``legacy`` (build options only): the value collections whose manifest does not record
    the option were built with, because they predate it or its default changed; they are
    reopened with it (``ComponentSpec.reopen_options``). A component whose option has one
    records the option in its identity whenever its value differs from ``legacy``.
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    stage: OptionStage = "build"
    legacy: Any = None

    def __post_init__(self) -> None:
        # declarations are code, not user input; a bad one is a plugin bug, said early
        if self.type not in _TYPES:
            raise PluginError(f"option {self.name!r}: type must be bool, int, float, str or "
                              f"PATH, not {self.type!r}")
        if self.stage not in _STAGES:
            raise PluginError(f"option {self.name!r}: stage must be one of {_STAGES}")

    @property
    def type_name(self) -> str:
        return "choice" if self.choices else _TYPES[self.type]

    def accepts(self) -> str:
        """What a valid value looks like, in words (for error messages and help)."""
        if self.choices:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        elif self.type is bool:
            text = "true or false (also 1/0, yes/no, on/off)"
        elif self.type in (int, float):
            text = "an integer" if self.type is int else "a number"
            if self.minimum is not None:
                text += f" >= {_show(self.minimum)}"
        elif self.type == PATH:
            text = "a file or directory path"
        else:
            text = "text"
        return text + (" (or unset)" if self.default is None else "")

    def parse(self, value: Any, component: str = "component") -> Any:
        """``value`` as the declared type; a CLI string is converted, anything else checked."""
        if value is None and self.default is None:
            return None
        try:
            parsed = _convert(self.type, value)
            if self.choices:
                parsed = _choose(parsed, self.choices)
            if self.minimum is not None and parsed < self.minimum:
                raise ValueError("too small")
        except (TypeError, ValueError):
            raise UsageError(f"{component}: option {self.name}={value!r} is invalid",
                             hint=f"{self.name} takes {self.accepts()}") from None
        return parsed

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (``retriever plugins list --json``)."""
        row: dict[str, Any] = {"name": self.name, "type": self.type_name,
                               "default": self.default, "stage": self.stage, "help": self.help}
        if self.choices:
            row["choices"] = list(self.choices)
        if self.minimum is not None:
            row["minimum"] = self.minimum
        if self.legacy is not None:
            row["legacy"] = self.legacy
        return row


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _convert(kind: Any, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)  # True is an int to Python, not to a user
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())  # "1.5" and "ten" raise ValueError
        raise TypeError(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value.strip()) if isinstance(value, str) else value
        if not isinstance(number, (int, float)) or math.isnan(number):
            raise TypeError(value)
        return float(number)
    # str and PATH: text; a path object is accepted where a path is meant
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        return value
    raise TypeError(value)


def _choose(value: Any, choices: Sequence[Any]) -> Any:
    for choice in choices:
        if value == choice:
            return choice
    if isinstance(value, str):  # names are case-insensitive: "HNSW" means "hnsw"
        for choice in choices:
            if isinstance(choice, str) and choice.lower() == value.strip().lower():
                return choice
    raise ValueError(value)


def resolve_options(component: str, declared: Iterable[Option],
                    given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` parsed against ``declared``; an unknown name is a UsageError.

    Only the given options come back (defaults are the component's own business).
    """
    table = {option.name: option for option in declared}
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise UsageError(
            f"{component} has no option {', '.join(unknown)}",
            hint=f"its options: {options_help(table.values())}")
    return {name: table[name].parse(value, component) for name, value in given.items()}


def options_help(declared: Iterable[Option], stages: bool = False) -> str:
    """``name (type, default X), ...`` in one line; ``none`` when nothing is declared.

    ``stages`` adds when each option applies (``build``, ``open`` or ``search``).
    """
    parts = []
    for option in declared:
        detail = option.type_name if not option.choices else "|".join(
            _show(c) for c in option.choices)
        if option.default is not None:
            detail += f", default {_show(option.default)}"
        if stages:
            detail += f", {option.stage}"
        parts.append(f"{option.name} ({detail})")
    return ", ".join(parts) or "none"


def parse_pairs(pairs: Iterable[str], flag: str = "--option") -> dict[str, str]:
    """``["k=v", ...]`` from the command line -> ``{"k": "v"}``; values stay text here.

    Typing happens in ``Option.parse`` once the component is known, so the CLI and the SDK
    share it.
    """
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad {flag} {pair!r}", hint=f"use KEY=VALUE, e.g. {flag} batch_size=16")
        options[key.strip()] = value.strip()
    return options
