"""Token compression: what each compressor keeps, against uncompressed exact MaxSim.

    python benchmarks/compression.py                   # both corpora, factor 3
    python benchmarks/compression.py --pages 300 --real-pages 0 --json
    python benchmarks/compression.py --threads 2 --factor 3

Two corpora:

- **structured**: the search benchmark's ColPali-shaped pages (``synthetic.py``: 1030 x
  128, background and topic clusters), laid out on a 32 x 32 patch grid plus 6 page-level
  vectors: each content cluster fills consecutive cells of a text block (a "paragraph",
  whose box is a region), background fills the rest. Queries: 32 content vectors of a
  target page plus noise (the search benchmark's).
- **real**: the default encoder's own vectors over the quality benchmark's Debian
  manuals (``python benchmarks/quality_setup.py`` builds them; indexed once through
  ``Retriever.index`` into a cached collection), queries from ``eval_sets``.

Per compressor (and colpali-engine's ``HierarchicalTokenPooler`` at the same factor, same
threads): vectors per page, bytes per page (fp16 vectors, and binary codes: 1 bit per
dimension), recall@10 against exact uncompressed MaxSim, top-region agreement (the best
region of ``retriever.grounding.ground`` on the compressed page is the uncompressed
one's), target@1 and target@10 (the page a query was made from, on the structured pages,
or the page it is labelled with, on the real ones, is still first, still in the top 10),
target@10 kept (target@10 as a fraction of the uncompressed collection's: how much of the
relevance recall the compression keeps), kept cosine (each stored vector's best cosine
with what the compressed page kept for it, averaged: how far the compression moved the
vectors) and compression ms per page. ``--json``: one object per row as the last lines.

A calibration row, ``uncompressed, jittered``, keeps every vector but moves each a little
(Gaussian noise of norm 0.1, kept cosine about 0.995, far less than any compressor moves
them): what recall@10 against the exact top 10 costs when nothing is merged at all, so
how much of that figure is pages just below the best trading places.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--pages", type=int, default=400, help="structured pages (0: skip)")
p.add_argument("--queries", type=int, default=64)
p.add_argument("--real-pages", type=int, default=1, help="0: skip the real corpus")
p.add_argument("--factor", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", action="store_true")
ARGS = p.parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # every system gets the same threads, before import
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from retriever.compression import compress_all  # noqa: E402
from retriever.plugin_host import get_registry  # noqa: E402
from retriever.grounding import ground  # noqa: E402
from retriever.search.scoring import maxsim_scores_many  # noqa: E402
from retriever.types import MultiVector, Region  # noqa: E402

K = 10
GRID = 32
ROWS: list[dict] = []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- corpora ----------------------------------------------------------------------------

def structured(n_pages: int, n_queries: int):
    """Pages as MultiVectors on a patch grid, their paragraph regions, and the queries."""
    from synthetic import N_CENTRES, Corpus

    corpus = Corpus(n_pages)
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    cells = np.stack([xs, ys, xs + 1, ys + 1], -1).reshape(-1, 4) / GRID  # (1024, 4)
    block = [(x, y) for y in range(4, GRID - 2) for x in range(4, GRID - 4)]  # text block
    pages, regions = [], []
    planted = []  # (page, grid cells of one paragraph)
    for start, chunk in corpus.chunks():
        for i, vectors in enumerate(chunk):
            page = start + i
            centres = corpus.centres(page)  # (12, d)
            content = np.arange(corpus.n_vectors - corpus.n_content, corpus.n_vectors)
            which = np.argmax(vectors[content] @ centres.T, axis=1)  # (nc,) its centre
            order = content[np.argsort(which, kind="stable")]  # paragraph after paragraph
            background = np.arange(corpus.n_vectors - corpus.n_content)
            glob, background = background[:6], background[6:]
            grid = np.empty(GRID * GRID, np.int64)  # cell -> row of ``vectors``
            text_cells = [y * GRID + x for x, y in block[:order.size]]
            grid[text_cells] = order
            rest = np.setdiff1d(np.arange(GRID * GRID), text_cells)
            grid[rest] = background[:rest.size]
            rows = np.concatenate([grid, glob])
            boxes = np.concatenate([cells, np.tile([0, 0, 1, 1], (6, 1))]).astype(np.float32)
            pages.append(MultiVector(vectors[rows], boxes, check_norm=False))
            sorted_which = np.sort(which)
            regs = []
            for c in range(N_CENTRES):
                mine = [text_cells[j] for j in np.flatnonzero(sorted_which == c)]
                if len(mine) >= 8:
                    planted.append((len(pages) - 1, np.array(mine)))
                    b = cells[mine]
                    regs.append(Region((float(b[:, 0].min()), float(b[:, 1].min()),
                                        float(b[:, 2].max()), float(b[:, 3].max())),
                                       f"paragraph {c}", source="text_layer"))
            regions.append(regs)
    queries, targets = corpus.queries(n_queries)
    # grounding queries plant relevance in one known paragraph: 16 of its vectors + noise
    rng = np.random.default_rng(7)
    grounding = []
    for i in rng.choice(len(planted), size=min(n_queries, len(planted)), replace=False):
        page, mine = planted[int(i)]
        rows = pages[page].vectors[rng.choice(mine, size=min(16, mine.size), replace=False)]
        grounding.append((page, as_query(rows + rng.standard_normal(rows.shape).astype(
            np.float32) * 0.5 / np.sqrt(rows.shape[1]))))
    return pages, regions, [as_query(q) for q in queries], grounding, targets


def as_query(rows: np.ndarray) -> MultiVector:
    return MultiVector.normalized(rows, np.tile([0, 0, 1, 1], (len(rows), 1)))


def real():
    """The default encoder's pages over the quality corpus, regions, and query vectors."""
    import tempfile

    from quality_setup import corpus_dir

    from retriever import Retriever

    corpus = corpus_dir()
    data = Path(os.environ.get("RETRIEVER_BENCH_DIR", tempfile.gettempdir())) / "compression-bench"
    with Retriever("real", data_dir=data) as r:
        if not r.exists:
            log(f"indexing {corpus} through Retriever.index (once; cached in {data})")
            r.index([corpus])
        records = []
        for doc in sorted(r.indexer.documents()):
            for number in range(1, 10_000):  # pages are numbered 1..n
                try:
                    records.extend(r.indexer.get([f"{doc}:{number}"]))
                except Exception:  # noqa: BLE001 - past the document's last page
                    break
        labelled = [json.loads(line) for name in ("questions.jsonl", "generated.jsonl")
                    for line in (Path(__file__).parent / "eval_sets" / name).read_text()
                    .splitlines() if line.strip()]
        # each query's labelled page (file name and page number), as a position in records
        where = {(Path(rec.source).name, rec.page_number): i for i, rec in enumerate(records)}
        found = [q for q in labelled if (q["source"], q["page"]) in where]
        if len(found) < len(labelled):
            log(f"  {len(labelled) - len(found)} labelled queries name a page not indexed")
        targets = [where[q["source"], q["page"]] for q in found]
        queries = r.encoder.encode_queries([q["text"] for q in found])
    pages = [rec.embedding for rec in records]
    # real questions are about one passage: ground each on the page exact search puts first
    grounding = [(int(best[0]), q) for q, best in zip(queries, top10(queries, pages))]
    return pages, [list(rec.regions) for rec in records], queries, grounding, targets


# -- measuring --------------------------------------------------------------------------

def top10(queries, pages) -> list[np.ndarray]:
    vectors = np.concatenate([p.vectors.astype(np.float32) for p in pages])
    offsets = np.concatenate([[0], np.cumsum([p.n for p in pages])])
    scores = maxsim_scores_many([q.vectors for q in queries], vectors, offsets,
                                threads=ARGS.threads)  # (Q, P)
    return [np.argsort(-s, kind="stable")[:K] for s in scores]


def top_regions(grounding, pages, regions) -> list:
    """Per (page, query), the best region's box on that page (None: no region)."""
    out = []
    for page, q in grounding:
        found = ground(q, pages[page], regions[page], max_regions=1)
        out.append(found[0].bbox if found else None)
    return out


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def row(corpus: str, system: str, pages, compressed, ms_per_page, queries, regions,
        exact, grounding, exact_regions, targets=None) -> None:
    ranked = top10(queries, compressed)
    # the page each query was made from, still ranked first (None: no known targets)
    first = None if targets is None else float(np.mean(
        [r[0] == t for r, t in zip(ranked, targets)]))
    found = None if targets is None else float(np.mean(
        [t in r for r, t in zip(ranked, targets)]))
    rec = float(np.mean([len(set(r.tolist()) & set(e.tolist())) / K
                         for r, e in zip(ranked, exact)]))
    # grounding on the page the uncompressed search put first, so only grounding differs
    mine = top_regions(grounding, compressed, regions)
    pairs = [(a, b) for a, b in zip(mine, exact_regions) if b is not None]
    agree = float(np.mean([a is not None and iou(a, b) >= 0.5 for a, b in pairs])) \
        if pairs else None
    n_vec = float(np.mean([c.n for c in compressed]))
    dim = compressed[0].dim
    ROWS.append(dict(corpus=corpus, system=system, factor=ARGS.factor, threads=ARGS.threads,
                     pages=len(pages), vectors_per_page=round(n_vec, 1),
                     kb_per_page_fp16=round(n_vec * dim * 2 / 1024, 2),
                     kb_per_page_binary=round(n_vec * dim / 8 / 1024, 2),
                     recall_at_10=round(rec, 3),
                     target_at_1=None if first is None else round(first, 3),
                     target_at_10=None if found is None else round(found, 3),
                     top_region_agreement=None if agree is None else round(agree, 3),
                     kept_cosine=round(kept_cosine(pages, compressed), 4),
                     ms_per_page=None if ms_per_page is None else round(ms_per_page, 2)))
    r = ROWS[-1]
    # relevance kept: the labelled page's recall@10 as a fraction of the uncompressed one's
    base = next((b for b in ROWS if b["corpus"] == corpus and b["system"] == "uncompressed"), r)
    r["target_at_10_kept"] = (None if found is None or not base["target_at_10"]
                              else round(found / base["target_at_10"], 3))
    log(f"  {corpus} {system}: {r['vectors_per_page']} vectors/page, recall {rec:.3f}, "
        f"target@1 {r['target_at_1']}, target@10 {r['target_at_10']}, "
        f"agreement {r['top_region_agreement']}, kept cosine {r['kept_cosine']}, "
        f"{r['ms_per_page']} ms/page")


def kept_cosine(pages, compressed) -> float:
    """Mean over every stored vector of its best cosine with its compressed page."""
    best = [(p.vectors.astype(np.float32) @ c.vectors.astype(np.float32).T).max(axis=1)
            for p, c in zip(pages, compressed) if p.n and c.n]  # (n,) per page
    return float(np.mean(np.concatenate(best)))


def jittered(pages, noise: float = 0.1, seed: int = 11):
    """Every vector moved by Gaussian noise of norm ``noise`` and re-normalized."""
    rng = np.random.default_rng(seed)
    out = []
    for p in pages:
        v = p.vectors.astype(np.float32)
        v = v + rng.standard_normal(v.shape).astype(np.float32) * noise / np.sqrt(p.dim)
        out.append(MultiVector.normalized(v, p.boxes))
    return out


def colpali_pool(pages):
    import torch
    from colpali_engine.compression.token_pooling import HierarchicalTokenPooler

    torch.set_num_threads(ARGS.threads)
    pooler = HierarchicalTokenPooler()
    out = []
    for mv in pages:
        pooled = pooler.pool_embeddings([torch.from_numpy(mv.vectors.astype(np.float32))],
                                        pool_factor=ARGS.factor, num_workers=1)
        vectors = pooled[0].numpy() if isinstance(pooled, list) else pooled[0][0].numpy()
        # it returns no boxes: grounding is not comparable, so boxes are the whole page
        out.append(MultiVector(vectors, np.tile([0, 0, 1, 1], (len(vectors), 1)),
                               check_norm=False))
    return out


def run_corpus(name: str, pages, regions, queries, grounding, targets) -> None:
    log(f"{name}: {len(pages)} pages, {len(queries)} queries, "
        f"{np.mean([p.n for p in pages]):.1f} vectors/page")
    exact = top10(queries, pages)
    exact_regions = top_regions(grounding, pages, regions)
    row(name, "uncompressed", pages, pages, None, queries, regions, exact, grounding,
        exact_regions, targets)
    # calibration: nothing merged, every vector moved a little
    row(name, "uncompressed, jittered (noise 0.1)", pages, jittered(pages), None, queries,
        regions, exact, grounding, exact_regions, targets)
    f = ARGS.factor
    # (label, compressor name, options): the defaults, then the variants worth comparing
    variants = [(f"pool:{f}", "pool", {"factor": f}),
                (f"pool:{f} within_regions=false", "pool",
                 {"factor": f, "within_regions": False}),
                (f"pool:{f} linkage=ward", "pool", {"factor": f, "linkage": "ward"}),
                (f"pool:{f} spatial=1", "pool", {"factor": f, "spatial": 1.0}),
                (f"prune:{f}", "prune", {"factor": f}),
                (f"prune:{f} within_regions=false", "prune",
                 {"factor": f, "within_regions": False}),
                ("merge:2", "merge", {"factor": 2})]
    for label, plugin, options in variants:
        compressor = get_registry().create("compressor", plugin, **options)
        compress_all(label, compressor, pages[:1], regions[:1])  # warm-up: scipy import
        start = time.perf_counter()
        # the product's path: each page with its paragraphs, for a compressor that uses them
        compressed = compress_all(label, compressor, pages, regions)
        ms = (time.perf_counter() - start) * 1e3 / len(pages)
        row(name, f"ours: {label}", pages, compressed, ms, queries, regions, exact,
            grounding, exact_regions, targets)
    try:
        colpali_pool(pages[:2])
        start = time.perf_counter()
        peer = colpali_pool(pages)
        ms = (time.perf_counter() - start) * 1e3 / len(pages)
        row(name, f"colpali-engine HierarchicalTokenPooler pool_factor={ARGS.factor}", pages,
            peer, ms, queries, regions, exact, [], [], targets)
    except ImportError as exc:
        log(f"  colpali-engine not installed ({exc}): no peer row")


def main() -> None:
    if ARGS.pages:
        run_corpus("structured", *structured(ARGS.pages, ARGS.queries))
    if ARGS.real_pages:
        run_corpus("real (text/minilm)", *real())
    cols = ["corpus", "system", "vectors_per_page", "kb_per_page_fp16", "kb_per_page_binary",
            "recall_at_10", "target_at_1", "target_at_10", "target_at_10_kept",
            "top_region_agreement", "kept_cosine", "ms_per_page"]
    print(" | ".join(cols))
    for r in ROWS:
        print(" | ".join(str(r[c]) for c in cols))
    if ARGS.json:
        for r in ROWS:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
