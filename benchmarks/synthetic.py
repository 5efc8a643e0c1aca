"""Structured, ColPali-shaped synthetic pages, generated chunk by chunk and reproducibly.

Pure Gaussian vectors make every search method look alike. These pages look more like a
late-interaction encoder's output: about 70% of a page's vectors sit near one of a few
shared "background" directions (margins, blank paper), the rest come from a dozen content
clusters per page drawn around two of forty shared topic centroids, and about 5% of pages
are near-copies of an earlier page (so near-duplicates compete at the top). A query is 32
content vectors of a known target page plus noise.

Any chunk can be regenerated on its own (its random stream is seeded by its index), so a
100k-page collection never has to be in memory at once: stream the chunks, keep what you
need from each.
"""

from __future__ import annotations

__all__ = ["Corpus"]

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

N_BACKGROUND = 8
N_TOPICS = 40
N_CENTRES = 12
CONTENT_FRACTION = 0.3
COPY_RATE = 0.05


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(norm / np.sqrt(shape[-1]))


@dataclass
class Corpus:
    n_pages: int
    n_vectors: int = 1030
    dim: int = 128
    seed: int = 0
    chunk_pages: int = 128
    background: np.ndarray = field(init=False, repr=False)
    topics: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 0])
        self.background = _unit(rng.standard_normal((N_BACKGROUND, self.dim)))  # (8, d)
        self.topics = _unit(rng.standard_normal((N_TOPICS, self.dim)))  # (40, d)

    @property
    def n_content(self) -> int:
        return int(CONTENT_FRACTION * self.n_vectors)

    def centres(self, page: int) -> np.ndarray:
        """The content cluster centres of one page -> (12, d); a near-copy reuses an
        earlier page's centres plus a little noise."""
        rng = np.random.default_rng([self.seed, 1, page])
        if page > 10 and rng.random() < COPY_RATE:
            source = int(rng.integers(page))
            return _unit(self.centres(source) + _noise(rng, (N_CENTRES, self.dim), 0.1))
        page_topics = self.topics[rng.choice(N_TOPICS, 2, replace=False)]  # (2, d)
        picks = page_topics[rng.integers(2, size=N_CENTRES)]  # (12, d)
        return _unit(picks + _noise(rng, (N_CENTRES, self.dim), 0.6))

    @property
    def n_chunks(self) -> int:
        return -(-self.n_pages // self.chunk_pages)

    def chunk(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pages of chunk ``index`` -> (vectors (B, n, d) float32 unit rows,
        content (B, n_content) row indices of each page's content vectors)."""
        start = index * self.chunk_pages
        stop = min(start + self.chunk_pages, self.n_pages)
        # always draw a whole chunk and cut it: the first pages of a 10k corpus are then
        # exactly a 1k corpus with the same seed, whatever the chunk size
        b, n, nc = self.chunk_pages, self.n_vectors, self.n_content
        rng = np.random.default_rng([self.seed, 2, index])
        centres = np.stack([self.centres(p) for p in range(start, start + b)])  # (B, 12, d)
        bg = self.background[rng.integers(N_BACKGROUND, size=(b, n - nc))]  # (B, n-nc, d)
        bg += _noise(rng, bg.shape, 0.3)
        pick = rng.integers(N_CENTRES, size=(b, nc))  # (B, nc)
        content = centres[np.arange(b)[:, None], pick]  # (B, nc, d)
        content += _noise(rng, content.shape, 0.35)
        # background rows first, content rows last: MaxSim does not depend on row order,
        # so shuffling (as a real page's layout would) only costs generation time
        pages = np.concatenate([bg, content], axis=1)  # (B, n, d)
        pages /= np.linalg.norm(pages, axis=2, keepdims=True)
        where = np.broadcast_to(np.arange(n - nc, n), (b, nc))  # (B, nc) content rows
        return pages[: stop - start], where[: stop - start]

    def chunks(self, first: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(first page index, vectors (B, n, d)) for every chunk from ``first`` on."""
        for c in range(first, self.n_chunks):
            yield c * self.chunk_pages, self.chunk(c)[0]

    def queries(
        self, n_queries: int, n_query_vectors: int = 32, seed: int = 1
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Queries built from known target pages -> ([(q, d) float32], targets (Q,))."""
        rng = np.random.default_rng([self.seed, 3, seed])
        targets = np.sort(rng.choice(self.n_pages, size=n_queries, replace=False))
        queries = []
        for t in targets:
            pages, content = self.chunk(int(t) // self.chunk_pages)
            i = int(t) % self.chunk_pages
            rows = rng.choice(content[i], size=n_query_vectors, replace=False)
            q = pages[i, rows]  # (q, d)
            queries.append(_unit(q + _noise(rng, q.shape, 0.5)))
        return queries, targets
