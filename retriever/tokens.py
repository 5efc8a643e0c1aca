"""Counting tokens for a prompt budget: a named Hugging Face tokenizer, or an approximation.

The approximation (``approx``) needs nothing installed and leans high, so a budget it keeps
is usually kept by a real tokenizer too: every run of up to 4 letters or digits counts one
token (a 9-letter word is 3) and every other visible character (punctuation, symbols) one.
For English prose that is about 1.5 tokens per word, where GPT- and BERT-style tokenizers
give 1.2-1.4. Whitespace is free. Name a tokenizer when the budget must be exact.
"""

from __future__ import annotations

__all__ = ["TokenCounter", "approx_tokens", "token_counter", "APPROX"]

import functools
import re
from collections.abc import Callable
from typing import Any, Union

from .errors import UsageError

APPROX = "approx"
_PIECE = re.compile(r"[^\W_]{1,4}|[^\w\s]|_", re.UNICODE)


def approx_tokens(text: str) -> int:
    """The documented approximation (module docstring): pieces of <= 4 word characters
    plus one per punctuation mark or symbol."""
    return len(_PIECE.findall(text))


class TokenCounter:
    """``count(text) -> int`` plus the name it reports (``approx`` or the tokenizer's)."""

    def __init__(self, name: str, count: Callable[[str], int]) -> None:
        self.name = name
        self._count = count

    def __call__(self, text: str) -> int:
        return int(self._count(text))


@functools.lru_cache(maxsize=8)
def _hf_counter(name: str) -> TokenCounter:
    # loaded once per process: a server builds a context per request with the same one
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise UsageError(f"tokenizer {name!r} needs transformers",
                         hint="pip install transformers, or leave the tokenizer unset "
                              "for the approximation") from exc
    try:
        # local_files_only: a path on disk or a model already in the local cache, never
        # a download (the tool runs offline, and a typo must not reach the hub)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load tokenizer {name!r} offline: {exc}",
                         hint="give a local directory holding tokenizer files, or the "
                              "name of a model already in the Hugging Face cache") from exc

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    return TokenCounter(name, count)


TokenizerArg = Union[None, str, TokenCounter, Callable[[str], int], Any]


def token_counter(tokenizer: TokenizerArg = None) -> TokenCounter:
    """None or "approx": the approximation; a string: a Hugging Face tokenizer (local
    directory or cached name, via ``AutoTokenizer``, offline); an object with ``encode``
    (a tokenizer already loaded); or a function from text to a count."""
    if tokenizer is None or tokenizer == APPROX:
        return TokenCounter(APPROX, approx_tokens)
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    if isinstance(tokenizer, str):
        return _hf_counter(tokenizer)
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)

        def count(text: str) -> int:
            try:
                return len(encode(text, add_special_tokens=False))
            except TypeError:  # tiktoken and friends take no such keyword
                return len(encode(text))

        return TokenCounter(name, count)
    if callable(tokenizer):
        return TokenCounter(getattr(tokenizer, "__name__", "custom"), tokenizer)
    raise UsageError(f"tokenizer must be a name, a tokenizer or a function, "
                     f"not {type(tokenizer).__name__}")
