"""The one text analyzer of lexical search: region text and queries become the same terms.

Why one analyzer in Python rather than each store's own: the LanceDB full-text index, the
FAISS backend's in-memory BM25 and the per-region evidence that fusion and grounding use
must all agree on what a term is, or a phrase found by one would be missed by another.
So the stores index *terms* (``region_terms``), already normalized here, with a plain
whitespace tokenizer, and queries go through ``analyze`` before they reach a store.

A term: a run of letters or digits (punctuation and ``_`` split, as most full-text
tokenizers do), lower-cased, accents folded, English stop words and question words
dropped, then lightly stemmed (``stem``: plurals, -ing, -ed; a deterministic rule set, so
an index built on one machine answers queries analyzed on another, whatever is installed).
"""

from __future__ import annotations

__all__ = ["STOPWORDS", "QUESTION_WORDS", "QueryTerms", "analyze", "terms", "stem",
           "region_terms", "top_level_texts"]

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: words asked with, not asked about: dropped from queries and text alike
QUESTION_WORDS = frozenset(
    "how what why which when where who whom whose can could do does did should would "
    "is are am was were will shall may might must".split())

#: English function words (and the question words): they carry no lexical evidence
STOPWORDS = QUESTION_WORDS | frozenset(
    "a an and as at be been being but by for from had has have having he her here hers "
    "him his i if in into it its itself me my myself no nor not of off on once only or "
    "other our ours out over own same she so some such than that the their theirs them "
    "then there these they this those through to too under until up very we with you "
    "your yours about above after again against all any because before below between "
    "both during each few further more most just also s t".split())

_TOKEN = re.compile(r"[^\W_]+")
_MAX_TERM = 40  # longer "words" are base64, hashes or hex dumps: not worth indexing
_VOWELS = frozenset("aeiouy")
_DOUBLE = frozenset("bdfgmnprt")  # "running" -> "run", but "falling" stays "fall"


def _fold(text: str) -> str:
    """Lower-case, accents stripped ("café" -> "cafe")."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] in _DOUBLE:
        return word[:-1]
    return word


def stem(word: str) -> str:
    """A light English stemmer: plural and verb endings off, nothing cleverer.

    Light stemming matches aggressive (Porter) stemming for retrieval quality in English
    while never conflating unrelated words ("university"/"universe"); its rules are fixed
    here so that every store and every machine agrees on them.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        base = word[: -len(suffix)]
        if word.endswith(suffix) and len(base) >= 3 and _VOWELS & set(base):
            word = _undouble(base)
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]  # "name", "named", "naming" -> "nam"
    return word


def terms(text: str) -> list[str]:
    """The terms of ``text`` in reading order (stop words dropped)."""
    out = []
    for token in _TOKEN.findall(_fold(text)):
        if token in STOPWORDS or len(token) > _MAX_TERM:
            continue
        out.append(stem(token))
    return out


@dataclass(frozen=True)
class QueryTerms:
    """A query as lexical search sees it."""

    text: str
    terms: tuple[str, ...]  # reading order, repeats kept (phrases and bigrams need them)
    words: int  # tokens before stop words were dropped
    question: bool  # asked as a question (a question word first, or a "?")

    @property
    def unique(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.terms))

    @property
    def bigrams(self) -> tuple[tuple[str, str], ...]:
        return tuple(dict.fromkeys(zip(self.terms, self.terms[1:])))

    def match_text(self) -> str:
        """What a store's full-text query gets: the terms joined by spaces."""
        return " ".join(self.unique)


def analyze(text: str) -> QueryTerms:
    tokens = _TOKEN.findall(_fold(text))
    question = text.rstrip().endswith("?") or bool(tokens and tokens[0] in QUESTION_WORDS)
    return QueryTerms(text=text, terms=tuple(terms(text)), words=len(tokens),
                      question=question)


def top_level_texts(regions: Sequence[Any]) -> list[str]:
    """The text of each top-level region (``record.regions`` order), without building
    ``Region`` objects when the regions are stored columns."""
    columns = getattr(regions, "columns", None)  # LazyRegions
    if columns is None and hasattr(regions, "top_level"):  # RegionColumns
        columns = regions
    if columns is not None:
        return [columns.text(int(i)) for i in columns.top_level()]
    return [region.text for region in regions]


def region_terms(regions: Sequence[Any]) -> list[str]:
    """What a store indexes for one page: per top-level region, its terms joined by
    spaces ("" for a region without any), aligned with ``record.regions``."""
    return [" ".join(terms(text)) for text in top_level_texts(regions)]
