"""Small structured multi-vector pages for recall tests (importable from tests/).

Like benchmarks/synthetic.py, scaled down: most vectors of a page sit near a few shared
background directions, the rest near the page's content centres drawn around two shared
topics; a query is some of a target page's content vectors plus noise. Random Gaussian
pages would make codes look better (or worse) than they are on encoder output.
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def structured_corpus(n_pages: int, n_vectors: int = 40, dim: int = 64, n_queries: int = 10,
                      seed: int = 0):
    """-> (pages [(n, d) float32], queries [(8, d) float32], targets (n_queries,))."""
    rng = np.random.default_rng(seed)
    background = _unit(rng.standard_normal((4, dim)))
    topics = _unit(rng.standard_normal((10, dim)))
    n_content = n_vectors // 3
    pages, contents = [], []
    for _ in range(n_pages):
        centres = _unit(topics[rng.choice(10, 2, replace=False)][rng.integers(2, size=6)]
                        + rng.standard_normal((6, dim)) * 0.6 / np.sqrt(dim))
        bg = background[rng.integers(4, size=n_vectors - n_content)]
        content = centres[rng.integers(6, size=n_content)]
        page = np.concatenate([bg + rng.standard_normal(bg.shape) * 0.3 / np.sqrt(dim),
                               content + rng.standard_normal(content.shape) * 0.35 / np.sqrt(dim)])
        pages.append(_unit(page))
        contents.append(np.arange(n_vectors - n_content, n_vectors))
    targets = rng.choice(n_pages, size=n_queries, replace=False)
    queries = []
    for t in targets:
        q = pages[t][rng.choice(contents[t], size=8, replace=False)]
        queries.append(_unit(q + rng.standard_normal(q.shape) * 0.5 / np.sqrt(dim)))
    return pages, queries, targets
