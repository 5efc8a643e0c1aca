"""Warm search latency on a 1,000-page default collection (text/minilm, LanceDB), with a peer.

    python benchmarks/latency_warm.py                  # build once into the cache, then measure
    python benchmarks/latency_warm.py --queries 100 --json

The collection holds real text: the text layer of Debian manuals that are not in the
quality corpus (GnuTLS, Asymptote, GLPK's graphs), the first ``--pages`` pages that have at
least three lines, with real MiniLM vectors of every line (the default encoder, the same
text it would see through ``retriever index``). Pages go to the indexer directly (no
rendering, no OCR: those are indexing costs, not search costs), once, into ``--cache``;
later runs reuse it.

Measured warm (the collection opened and one search done first), one query at a time:

* ``Retriever.search(q, k=5)`` with regions, the product's path, end to end;
* its parts on the same queries: query encoding, vector search, ``get()`` of the 5 hits,
  grounding of the 5 hits, and building the hits' ``Region`` trees (what ``get()`` used to
  do for every hit; now only on access);
* the peer a user would write: the same MiniLM line vectors in a LanceDB table, one row
  per line with its text and page, LanceDB's own vector search for the top 5 lines
  (flat, exact: what ``table.search(vector).limit(5)`` does without an index).

Queries are phrases of 6-10 words taken from random paragraphs of the collection (seeded).
Every system runs in this process with the same thread count (``--threads``: torch,
OpenMP and LanceDB's CPU pool).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PDFS = ["/usr/share/doc/gnutls-doc/gnutls.pdf", "/usr/share/doc/asymptote/asymptote.pdf",
        "/usr/share/doc/glpk-doc/graphs.pdf", "/usr/share/doc/glpk-doc/glpk.pdf"]


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=60, help="timed queries per path")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path,
                    default=Path.home() / ".cache" / "vision-retriever" / "latency")
    ap.add_argument("--pdf", action="append", default=None, help="source PDFs (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:  # thread pools size themselves at import: pin them first
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "LANCE_CPU_THREADS"):
        os.environ[var] = str(ARGS.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

COLLECTION = "warm"
PEER_TABLE = "lines"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pages(pdfs: list[str], wanted: int) -> list:
    """Text-layer pages with at least three lines, in order, until ``wanted``."""
    from retriever.regions import flatten_lines, text_layer_regions
    from retriever.types import Page

    pages = []
    for pdf in pdfs:
        doc_id = hashlib.sha256(Path(pdf).read_bytes()).hexdigest()[:20]
        for number, regions in sorted(text_layer_regions(pdf).items()):
            if len(flatten_lines(regions)) >= 3:
                pages.append(Page(doc_id=doc_id, source=pdf, page_number=number, width=1241,
                                  height=1754, regions=regions, has_text_layer=True))
            if len(pages) == wanted:
                return pages
    raise SystemExit(f"only {len(pages)} pages with text in {pdfs}; give more --pdf")


def _build(root: Path, pdfs: list[str], n_pages: int) -> None:
    """The collection through the indexer (our path) and the line table (the peer's)."""
    import lancedb
    import pyarrow as pa

    from retriever import config
    from retriever.manifest import Manifest
    from retriever.plugin_host import get_registry
    from retriever.regions import flatten_lines
    from retriever.types import PageRecord

    registry = get_registry()
    encoder = registry.create("encoder", config.DEFAULT_ENCODER)
    pages = _pages(pdfs, n_pages)
    manifest = Manifest(encoder=encoder.identity, indexer="lancedb")
    path = config.collection_path(COLLECTION, root) / "lancedb"
    indexer = registry.get("indexer", "lancedb").create(path=path, manifest=manifest)
    peer_rows: dict[str, list] = {"vector": [], "text": [], "page": []}
    started = time.perf_counter()
    for start in range(0, len(pages), 50):
        batch = pages[start:start + 50]
        vectors = encoder.encode_pages(batch)
        indexer.add([PageRecord.from_page(p, v) for p, v in zip(batch, vectors)])
        for page, mv in zip(batch, vectors):
            # one row per line, as a user's "chunk per line" table: the default encoder
            # makes one vector per non-empty line, so its vectors are reused; any other
            # granularity gets the lines embedded on their own
            texts = [ln.text for ln in flatten_lines(page.regions) if ln.text.strip()]
            rows = (mv.vectors if mv.n == len(texts) else
                    np.concatenate([q.vectors for q in encoder.encode_queries(texts)]))
            peer_rows["vector"] += list(rows.astype(np.float32))
            peer_rows["text"] += texts
            peer_rows["page"] += [page.key] * len(texts)
        _log(f"built {start + len(batch)}/{len(pages)} pages "
             f"({time.perf_counter() - started:.0f} s)")
    indexer.close()
    dim = encoder.dim
    table = pa.table({
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(np.stack(peer_rows["vector"]).reshape(-1), pa.float32()), dim),
        "text": pa.array(peer_rows["text"], pa.string()),
        "page": pa.array(peer_rows["page"], pa.string()),
    })
    lancedb.connect(root / "peer").create_table(PEER_TABLE, table, mode="overwrite")
    (root / "built.json").write_text(json.dumps({"pages": len(pages), "lines": table.num_rows,
                                                 "pdfs": pdfs, "keys": [p.key for p in pages]}))


def _queries(retriever, keys: list[str], n: int, seed: int) -> list[str]:
    """Phrases of 6-10 words from random pages (seeded)."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        record = retriever.indexer.get([rng.choice(keys)])[0]
        words = [w for p in record.regions for w in p.text.split()]
        if len(words) >= 12:
            size = rng.randint(6, 10)
            start = rng.randrange(len(words) - size)
            out.append(" ".join(words[start:start + size]))
    return out


def _ms(samples: list[tuple[float, float]]) -> dict[str, float]:
    wall = np.asarray([w for w, _ in samples]) * 1000
    cpu = np.asarray([c for _, c in samples]) * 1000
    return {"p50_ms": float(np.percentile(wall, 50)), "p95_ms": float(np.percentile(wall, 95)),
            "mean_ms": float(wall.mean()), "cpu_p50_ms": float(np.percentile(cpu, 50))}


def _time(fn, queries: list[str]) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per query. CPU time (every thread of the process) does not grow
    when other programs take the cores, so on a shared machine it bounds the wall time an
    idle one would give (from above, when a call runs on several threads)."""
    out = []
    for q in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        fn(q)
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import lancedb

    from retriever import Retriever
    from retriever.grounding import ground
    from retriever.regions.columns import LazyRegions

    root = args.cache / f"pages-{args.pages}"
    built = root / "built.json"
    if not built.exists():
        _log(f"building {args.pages} pages into {root} (once)")
        _build(root, args.pdf or PDFS, args.pages)
    info = json.loads(built.read_text())
    retriever = Retriever(COLLECTION, data_dir=root)
    peer = lancedb.connect(root / "peer").open_table(PEER_TABLE)
    queries = _queries(retriever, info["keys"], args.queries, args.seed)
    k = args.k
    encoder, indexer = retriever.encoder, retriever.indexer
    options = {"aggregate": getattr(encoder, "region_aggregate", "mean")}

    def peer_search(q: str) -> list:
        vector = encoder.encode_queries([q])[0].vectors[0]
        return peer.search(vector).limit(k).select(["page", "text", "_distance"]).to_list()

    for q in queries[:3]:  # warm: caches, lazy imports, LanceDB's first-read costs
        retriever.search(q, k)
        peer_search(q)
    rows = [("Retriever.search (k=5, regions)", _time(lambda q: retriever.search(q, k), queries))]
    qvs = {q: encoder.encode_queries([q])[0] for q in queries}
    found = {q: indexer.search([qvs[q]], k)[0] for q in queries}
    records = {q: indexer.get([s.key for s in found[q]]) for q in queries}
    rows += [
        ("  query encoding", _time(lambda q: encoder.encode_queries([q]), queries)),
        ("  vector search (indexer.search)", _time(lambda q: indexer.search([qvs[q]], k),
                                                   queries)),
        ("  get() of the hits", _time(lambda q: indexer.get([s.key for s in found[q]]),
                                      queries)),
        ("  grounding of the hits", _time(lambda q: [ground(qvs[q], r.embedding, r.regions,
                                                            **options) for r in records[q]],
                                          queries)),
        ("  (Region trees of the hits, on access)", _time(
            lambda q: [list(LazyRegions(r.regions.to_json())) for r in records[q]], queries)),
        ("peer: LanceDB vector search over lines (k=5)", _time(peer_search, queries)),
        ("  its search alone", _time(
            lambda q: peer.search(qvs[q].vectors[0]).limit(k).select(["page", "text", "_distance"])
            .to_list(), queries)),
    ]
    retriever.close()
    results = [{"path": name, **_ms(samples), "queries": len(samples)} for name, samples in rows]
    ours, theirs = results[0]["p50_ms"], results[-2]["p50_ms"]
    if args.json:
        for row in results:
            print(json.dumps({**row, "pages": info["pages"], "threads": args.threads}))
        return
    print(f"\n{info['pages']} pages, {info['lines']} line vectors (MiniLM, 384-d), "
          f"{len(queries)} phrase queries, k={k}, {args.threads} threads, warm")
    print(f"{'path':<48} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'CPU p50':>8}")
    for row in results:
        print(f"{row['path']:<48} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
              f"{row['mean_ms']:>8.1f} {row['cpu_p50_ms']:>8.1f}")
    print(f"\nours / peer (p50 wall): {ours / theirs:.2f}; (p50 CPU): "
          f"{results[0]['cpu_p50_ms'] / results[-2]['cpu_p50_ms']:.2f}")


if __name__ == "__main__":
    main(ARGS)
