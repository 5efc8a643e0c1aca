"""Sweep text/minilm's granularity on collections already indexed: page retrieval + grounding.

    python benchmarks/granularity_sweep.py --tune-data-dir /tmp/t --eval-data-dir /tmp/q \\
        -v lines -v granularity=paragraphs -v granularity=windows,window=64,overlap=16

Indexing (text layer, OCR) is what makes ``retriever eval`` slow, and it does not depend on
the granularity: this reads back the regions every page of an existing collection stored,
re-encodes the pages with each variant (``-v``: comma-separated encoder options, ``lines``
for the defaults), and then does what ``retriever eval`` does for our system: exact MaxSim
over every page, the top ``k`` pages, ``ground()`` with the search defaults on the answer
page, the same metrics (``retriever.evaluation``). With the same encoder options it gives
the harness's figures; ``benchmarks/quality.py -o ...`` reports the chosen one.

Query sets (TUNING DISCIPLINE: choose on these, never on the test split):

* ``tune``: phrase and keyword queries generated (seed 0, 100 per kind, as ``retriever
  eval``) from PDFs outside the evaluation corpus, as indexed by ``retriever eval PDF...
  --data-dir DIR`` (``--tune-data-dir DIR``; collection ``eval``);
* ``dev``: the dev split of ``eval_sets/questions.jsonl`` over the evaluation corpus as
  ``benchmarks/quality.py --data-dir DIR`` indexed it (``--eval-data-dir DIR``);
* ``--extra DIR:FILE``: hand-written questions of your own over documents outside the
  corpus, indexed by ``retriever eval --data-dir DIR``.
  ``--split test`` (the test questions) is for the final report only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

QUESTIONS = Path(__file__).resolve().parent / "eval_sets" / "questions.jsonl"


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune-data-dir", type=Path, default=None)
    ap.add_argument("--eval-data-dir", type=Path, default=None)
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--extra", action="append", default=[], metavar="DATA_DIR:QUERIES.jsonl",
                    help="more tuning questions (JSONL as retriever eval --queries) over the "
                         "collection retriever eval --data-dir DATA_DIR indexed; repeatable")
    ap.add_argument("-v", "--variant", action="append", default=[],
                    help="encoder options K=V,K=V (or 'lines'); repeatable")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _options(spec: str) -> dict:
    from cli.eval_cmd import parse_value

    if spec.strip() in ("", "lines", "default"):
        return {}
    pairs = (part.partition("=") for part in spec.split(","))
    return {k.strip(): parse_value(v.strip()) for k, _, v in pairs}


def _collection(data_dir: Path):
    """Pages (as the encoder sees them) and a catalog, from an indexed collection."""
    from retriever import Retriever
    from retriever.evaluation.catalog import IndexedPage, PageCatalog
    from retriever.types import Page

    with Retriever("eval", data_dir=data_dir, ocr=None) as r:
        indexer = r.indexer
        keys = [k for k in _page_keys(indexer)]
        pages, catalog = [], []
        for start in range(0, len(keys), 64):
            for key, rec in zip(keys[start:start + 64], indexer.get(keys[start:start + 64])):
                pages.append(Page(doc_id=rec.doc_id, source=rec.source,
                                  page_number=rec.page_number, width=rec.width,
                                  height=rec.height, regions=list(rec.regions)))
                catalog.append(IndexedPage(key, rec.source, rec.page_number, rec.source,
                                           rec.page_number))
    return pages, PageCatalog(catalog)


def _page_keys(indexer) -> list[str]:
    from retriever.ingest import open_document

    keys = []
    for doc_id, source in sorted(indexer.documents().items(), key=lambda kv: kv[1]):
        count = open_document(Path(source), render=False, doc_id=doc_id).page_count
        keys += [f"{doc_id}:{n}" for n in range(1, count + 1)]
    return keys


def _queries(kind: str, pages, catalog, split: str, path: Path = QUESTIONS):
    from retriever.evaluation import generate_queries, load_queries
    from retriever.regions import text_layer_regions

    if kind == "tune":
        pdfs = sorted({p.source for p in pages if p.source.lower().endswith(".pdf")})
        layers = {s: text_layer_regions(Path(s)) for s in pdfs}
        queries = generate_queries(layers, max_queries=100, seed=0).queries
    else:
        queries = [q for q in load_queries(path) if path != QUESTIONS or q.split == split]
    resolved, _ = catalog.resolve(queries)
    return resolved


def _evaluate(encoder, pages, resolved, k: int):
    import numpy as np

    from retriever.evaluation.metrics import grounding_score
    from retriever.evaluation.report import Outcome
    from retriever.grounding import GroundingOptions, ground
    from retriever.search.scoring import maxsim_scores_many

    from retriever.types import MultiVector

    vectors = []
    for start in range(0, len(pages), 16):
        vectors += encoder.encode_pages(pages[start:start + 16])
    # the LanceDB collection stores float16 (its default dtype): score what it would hold
    vectors = [MultiVector(mv.vectors.astype(np.float16).astype(np.float32), mv.boxes,
                           check_norm=False) for mv in vectors]
    offsets = np.concatenate(([0], np.cumsum([mv.n for mv in vectors]))).astype(np.int64)
    flat = np.vstack([mv.vectors for mv in vectors]).astype(np.float32)  # (N, dim)
    keys = [p.key for p in pages]
    queries = encoder.encode_queries([q.text for q, _ in resolved])
    scores = maxsim_scores_many([qv.vectors for qv in queries], flat, offsets)  # (Q, P)
    options = GroundingOptions(max_regions=5, aggregate=encoder.region_aggregate)
    outcomes = []
    for (query, truth), qv, row in zip(resolved, queries, scores):
        top = np.argsort(-row, kind="stable")[:k].tolist()
        rank = next((i for i, p in enumerate(top, start=1) if keys[p] == truth), None)
        grounding = None
        if query.bbox is not None and rank is not None:
            page = top[rank - 1]
            hits = ground(qv, vectors[page], pages[page].regions, options)
            grounding = grounding_score([h.bbox for h in hits], query.bbox)
        outcomes.append(Outcome("ours", query, truth, rank, grounding, True, keys[top[0]]))
    return outcomes, int(offsets[-1])


class _Memo:
    """The torch model, with embeddings remembered per (text, max_length)."""

    def __init__(self, model) -> None:
        self._model, self._known = model, {}
        self.dim, self.count_tokens = model.dim, model.count_tokens

    def embed(self, texts, *, max_length: int, batch_size: int):
        import numpy as np

        todo = sorted({t for t in texts if (t, max_length) not in self._known})
        if todo:
            fresh = self._model.embed(todo, max_length=max_length, batch_size=batch_size)
            self._known.update({(t, max_length): v for t, v in zip(todo, fresh)})
        return np.stack([self._known[(t, max_length)] for t in texts]).astype(np.float32)


def main(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from retriever.evaluation import summarize
    from retriever.plugin_host import get_registry

    torch.set_num_threads(args.threads)
    sets = []
    if args.tune_data_dir:
        pages, catalog = _collection(args.tune_data_dir)
        sets.append(("tune", pages, _queries("tune", pages, catalog, args.split)))
    if args.eval_data_dir:
        pages, catalog = _collection(args.eval_data_dir)
        sets.append((args.split, pages, _queries("questions", pages, catalog, args.split)))
    for extra in args.extra:
        data_dir, _, queries = extra.partition(":")
        pages, catalog = _collection(Path(data_dir))
        sets.append((Path(queries).stem, pages,
                     _queries("questions", pages, catalog, args.split, Path(queries))))
    rows, shared = [], None
    for spec in args.variant or ["lines"]:
        options = {"query_backend": "torch", **_options(spec)}
        encoder = get_registry().create("encoder", "text/minilm", **options)
        # one model for every variant, and each text embedded once: most units recur
        # across granularities (a one-line paragraph is its line, its paragraph, its window)
        shared = shared or _Memo(encoder._torch_model())
        encoder._torch = shared
        if options["query_backend"] == "torch":
            encoder._queries = shared  # else: the backend asked for (onnx, onnx-int8)
        for name, pages, resolved in sets:
            outcomes, n_vectors = _evaluate(encoder, pages, resolved, args.k)
            agreement = {}
            if options["query_backend"] != "torch":  # its queries against torch's
                texts = [q.text for q, _ in resolved]
                mine = np.vstack([mv.vectors for mv in encoder.encode_queries(texts)])
                ref = shared.embed([t.strip() for t in texts], max_length=encoder.max_length,
                                   batch_size=64)
                cosine = (mine * ref).sum(1)
                agreement = {"query_cosine_mean": float(cosine.mean()),
                             "query_cosine_min": float(cosine.min())}
            for row in summarize(outcomes, args.k, ["ours"]):
                row.update(variant=spec, set=name, vectors_per_page=n_vectors / len(pages),
                           **agreement)
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"{spec:56} {name:5} {row['kind']:15} n={row['queries']:3} "
                          f"p@1 {row['recall@1']:.3f} MRR {row['mrr']:.3f} "
                          f"IoU {row.get('iou', float('nan')):.3f} "
                          f"top@.5 {row.get('top@0.5', float('nan')):.3f} "
                          f"vec/page {row['vectors_per_page']:.1f}", flush=True)


if __name__ == "__main__":
    main(ARGS)
