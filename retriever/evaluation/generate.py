"""Label-free queries from a PDF's own text layer: the answer is the block they came from.

A block (pdftotext's paragraph) with enough ordinary words becomes up to two queries:

* ``phrase``: a run of 6-10 consecutive words of the block, as printed;
* ``keywords``: 4-6 content words of the block (stopwords and numbers removed), drawn from
  its less common words across the corpus, lower-cased and shuffled.

Ground truth: the file, the 1-based page and the block's box. A phrase that also occurs on
another page, or a keyword set whose words all occur together on another page, has no
single answer and is dropped (counted in ``Generated.dropped``). Sampling is seeded and
keyed by file *name*, page and block, so the same files give the same queries anywhere.
"""

from __future__ import annotations

__all__ = ["KINDS", "STOPWORDS", "Generated", "generate_queries", "normalize_tokens"]

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..types import Region
from .queries import Query

KINDS = ("phrase", "keywords")

# A small English stopword list: function words carry no evidence of where an answer is.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can cannot could did do does doing done down during each
either else etc even ever every few for from further had has have having he her here hers
him his how however i if in into is it its itself just least less let like may me might
more most much must my neither no nor not now of off often on once one only or other our
ours out over own per rather same see she should since so some such than that the their
theirs them then there these they this those though through thus to too under until up
upon us use used uses using very via was we were what when where whether which while who
whom whose why will with within without would yet you your yours e g ie eg
another first second third new many well two three four five make makes made way given
give gives example examples following follows shown show shows section chapter page
""".split())

_TOKEN = re.compile(r"[a-z0-9]+")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def normalize_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens: how phrases are compared across pages."""
    return _TOKEN.findall(text.lower())


def _content_word(word: str) -> str | None:
    bare = _EDGE_PUNCT.sub("", word).lower()
    if len(bare) < 3 or not bare.isalpha() or bare in STOPWORDS:
        return None
    return bare


def _eligible(block: Region) -> bool:
    words = block.text.split()
    if len(words) < 12:
        return False
    wordy = sum(1 for w in words if sum(c.isalpha() for c in w) >= 2)
    dots = sum(1 for w in words if set(w) <= {".", "·", "…"})
    content = {c for c in (_content_word(w) for w in words) if c}
    # Tables of contents ("3.4 Expressions . . . . 23") and code listings fail these.
    return wordy >= 0.6 * len(words) and dots < 0.2 * len(words) and len(content) >= 6


@dataclass
class Generated:
    """Generated queries, with how many candidates were dropped and why."""

    queries: list[Query] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # e.g. "phrase: ambiguous"
    eligible_blocks: int = 0


class _Corpus:
    """Per-page token strings and token sets, to test whether a query has one answer."""

    def __init__(self, layers: Mapping[str, Mapping[int, Sequence[Region]]]) -> None:
        self.joined: dict[tuple[str, int], str] = {}
        self.sets: dict[tuple[str, int], frozenset[str]] = {}
        frequency: Counter = Counter()
        for source, pages in layers.items():
            for page, regions in pages.items():
                tokens = normalize_tokens(" ".join(r.text for r in regions))
                self.joined[(source, page)] = " " + " ".join(tokens) + " "
                self.sets[(source, page)] = frozenset(tokens)
                frequency.update(set(tokens))
        self.page_frequency = frequency

    def phrase_pages(self, phrase: str) -> int:
        needle = " " + " ".join(normalize_tokens(phrase)) + " "
        return sum(needle in text for text in self.joined.values())

    def keyword_pages(self, words: Sequence[str]) -> int:
        return sum(all(w in s for w in words) for s in self.sets.values())


def _phrase(block: Region, rng: random.Random, corpus: _Corpus,
            lengths: tuple[int, int]) -> tuple[str | None, str]:
    words = block.text.split()
    why = "hyphenated or not wordy"
    for _attempt in range(6):
        n = rng.randint(*lengths)
        if len(words) < n:
            return None, "too short"
        start = rng.randint(0, len(words) - n)
        run = words[start:start + n]
        # A word cut by end-of-line hyphenation ("pro- gramming") is not what a user types.
        if any(w.endswith("-") for w in run):
            continue
        if sum(_content_word(w) is not None for w in run) < 3:
            continue
        text = " ".join(run)
        if corpus.phrase_pages(text) == 1:
            return text, ""
        why = "ambiguous"  # on several pages; another run of the same block may not be
    return None, why


def _keywords(block: Region, rng: random.Random, corpus: _Corpus,
              counts: tuple[int, int]) -> tuple[str | None, str]:
    words = list(dict.fromkeys(c for c in (_content_word(w) for w in block.text.split()) if c))
    n = rng.randint(*counts)
    if len(words) < n:
        return None, "too few content words"
    # Draw from the rarer half of the block's words: a user looking for this passage names
    # what is particular to it, not the manual's every-page vocabulary.
    ranked = sorted(words, key=lambda w: (corpus.page_frequency[w], rng.random()))
    pool = ranked[:max(n, (len(ranked) + 1) // 2)]
    for _attempt in range(4):
        chosen = rng.sample(pool, n)
        if corpus.keyword_pages(chosen) == 1:
            rng.shuffle(chosen)
            return " ".join(chosen), ""
    return None, "ambiguous"


def generate_queries(
    layers: Mapping[str, Mapping[int, Sequence[Region]]],
    *,
    max_queries: int = 100,
    seed: int = 0,
    per_page: int = 2,
    kinds: Sequence[str] = KINDS,
    phrase_words: tuple[int, int] = (6, 10),
    keyword_count: tuple[int, int] = (4, 6),
) -> Generated:
    """Up to ``max_queries`` queries of each kind from ``layers`` (source -> page -> blocks).

    At most ``per_page`` blocks per page are used, so the queries spread over the pages.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown query kinds {sorted(unknown)}; use {KINDS}")
    corpus = _Corpus(layers)
    blocks = [(source, page, index, block)
              for source in sorted(layers, key=lambda s: (Path(s).name, s))
              for page in sorted(layers[source])
              for index, block in enumerate(layers[source][page]) if _eligible(block)]
    result = Generated(eligible_blocks=len(blocks))
    random.Random(seed).shuffle(blocks)
    made = Counter()
    used_on_page: Counter = Counter()
    for source, page, index, block in blocks:
        if all(made[k] >= max_queries for k in kinds):
            break
        if used_on_page[(source, page)] >= per_page:
            continue
        name = Path(source).name
        rng = random.Random(f"{seed}:{name}:{page}:{index}")  # str seeds are stable
        produced = False
        for kind in kinds:
            if made[kind] >= max_queries:
                continue
            if kind == "phrase":
                text, why = _phrase(block, rng, corpus, phrase_words)
            else:
                text, why = _keywords(block, rng, corpus, keyword_count)
            if text is None:
                result.dropped[f"{kind}: {why}"] += 1
                continue
            result.queries.append(Query(text=text, source=source, page=page, bbox=block.bbox,
                                        kind=kind, id=f"{kind}:{name}:p{page}:b{index}"))
            made[kind] += 1
            produced = True
        if produced:
            used_on_page[(source, page)] += 1
    result.queries.sort(key=lambda q: (KINDS.index(q.kind), Path(q.source).name, q.page, q.id))
    return result
