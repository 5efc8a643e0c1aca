"""Retrieval quality on real manuals: ours against BM25 and chunked MiniLM, same pages.

    python benchmarks/quality.py                    # default scope: 180 PDF pages + 16 images
    python benchmarks/quality.py --max-pages 8      # a quick look: 8 pages per PDF
    python benchmarks/quality.py --split dev        # tuning: hand-written dev questions only
    python benchmarks/quality.py -s max_regions=0   # search options passed to Retriever.search
    python benchmarks/quality.py --regenerate       # rewrite eval_sets/generated.jsonl
    python benchmarks/quality.py --data-dir DIR     # keep the index in DIR; reruns reuse it

The corpus (``quality_setup.py``, run first when needed; needs root for apt-get or the
packages installed) is page ranges of five Debian manuals (bash, the Debian developer's
reference, the PARI/GP tutorial, GNU MathProg, the Debian maintainers' guide) plus 16
pages of them rendered as PNGs or degraded "scans" without a text layer (OCR). Query sets
in ``eval_sets/``:

* ``generated.jsonl``: 150 exact phrases and 150 shuffled-keyword queries made from the
  PDFs' text layer (``retriever.evaluation.generate``, seed 0); the answer is the block
  they came from. Regenerated in memory at each full-scope run and compared with the file.
* ``questions.jsonl``: 88 questions written by hand in other words than the answer, over 41
  pages (16 of them images), with the answering block's box; 15 are the ``dev`` split.

Everything runs in one process through ``retriever.evaluation.evaluate`` (the same code as
``retriever eval``), one thread count for every system (``--threads``, default 2). Prints
the table (rows: system x query kind) and the hand-written questions by medium; ``--json``
prints one JSON object per row instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help="root directory of corpora")
    ap.add_argument("--max-pages", type=int, default=None, help="pages per PDF at most")
    ap.add_argument("--split", choices=["dev", "test", "all"], default="all",
                    help="hand-written questions to use")
    ap.add_argument("--no-generated", action="store_true", help="skip phrase/keyword queries")
    ap.add_argument("--no-questions", action="store_true", help="skip hand-written questions")
    ap.add_argument("--regenerate", action="store_true",
                    help="rewrite eval_sets/generated.jsonl from the full corpus, then run")
    ap.add_argument("--as-images", action="store_true", help="index the PDFs as page images")
    ap.add_argument("--systems", default="ours,bm25,chunks")
    ap.add_argument("-e", "--encoder", default=None)
    ap.add_argument("-o", "--option", action="append", default=[], help="encoder KEY=VALUE")
    ap.add_argument("-s", "--search-option", action="append", default=[],
                    help="Retriever.search KEY=VALUE (default max_regions=5)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="keep the collection here and reuse it (unchanged files are not "
                         "re-indexed); one directory per scope and encoder")
    ap.add_argument("--details", type=Path, default=None, help="per-query outcomes (JSONL)")
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:  # thread pools size themselves at import: pin them first
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataclasses  # noqa: E402
import json  # noqa: E402

from quality_setup import build_corpus, corpus_dir, load_spec  # noqa: E402

EVAL_SETS = Path(__file__).resolve().parent / "eval_sets"
GENERATED = EVAL_SETS / "generated.jsonl"
QUESTIONS = EVAL_SETS / "questions.jsonl"
GENERATED_PER_KIND = 150
SEED = 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pairs(pairs: list[str]) -> dict:
    from cli.eval_cmd import parse_value

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"bad KEY=VALUE: {pair!r}")
        out[key.strip()] = parse_value(value)
    return out


def _generate(corpus: Path) -> list:
    from retriever.evaluation import generate_queries
    from retriever.regions import text_layer_regions

    pdfs = [corpus / d["name"] for d in load_spec()["documents"]]
    layers = {str(p): text_layer_regions(p) for p in pdfs}
    made = generate_queries(layers, max_queries=GENERATED_PER_KIND, seed=SEED)
    return [dataclasses.replace(q, source=Path(q.source).name) for q in made.queries]


def _generated_set(full_corpus: Path, regenerate: bool) -> list:
    from retriever.evaluation import load_queries, write_queries

    if regenerate or not GENERATED.exists():
        queries = _generate(full_corpus)
        write_queries(GENERATED, queries, sources_as_names=True)
        _log(f"wrote {len(queries)} queries to {GENERATED}")
        return queries
    saved = load_queries(GENERATED)
    fresh = _generate(full_corpus)
    same = [(q.id, q.text, q.page) for q in fresh] == [(q.id, q.text, q.page) for q in saved]
    if not same:  # e.g. another poppler draws other blocks: the saved set stays the truth
        _log("warning: queries generated from this corpus differ from eval_sets/generated.jsonl; "
             "using the saved set (--regenerate rewrites it)")
    return saved


def _by_medium(outcomes: list, k: int, systems: list[str]) -> list[dict]:
    from retriever.evaluation import summarize

    regrouped = []
    for o in outcomes:  # the test split only: dev is for tuning, not for reporting
        medium = o.query.extra.get("medium")
        if o.query.kind == "question" and medium and o.query.split != "dev":
            query = dataclasses.replace(o.query, kind=f"question[{medium}]", split=None)
            regrouped.append(dataclasses.replace(o, query=query))
    return summarize(regrouped, k, systems)


def main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from retriever.evaluation import (
        DEFAULT_SEARCH_OPTIONS,
        EvalConfig,
        evaluate,
        format_table,
        load_queries,
    )

    full = build_corpus(corpus_dir(args.corpus, None))
    corpus = full if args.max_pages is None else build_corpus(
        corpus_dir(args.corpus, args.max_pages), max_pages=args.max_pages)
    pdf_names = {d["name"] for d in load_spec()["documents"]}
    cap = args.max_pages

    def in_scope(q) -> bool:  # a capped corpus keeps the first pages of each range
        return cap is None or q.source not in pdf_names or q.page <= cap

    queries = []
    if not args.no_generated:
        queries += [q for q in _generated_set(full, args.regenerate) if in_scope(q)]
    if not args.no_questions:
        queries += [q for q in load_queries(QUESTIONS) if in_scope(q)
                    and (args.split == "all" or q.split == args.split)]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    config = EvalConfig(
        paths=[corpus], queries=queries, generate=False, as_images=args.as_images,
        systems=systems, encoder=args.encoder, encoder_options=_pairs(args.option),
        search_options={**DEFAULT_SEARCH_OPTIONS, **_pairs(args.search_option)},
        data_dir=args.data_dir)
    result = evaluate(config, log=_log)
    medium_rows = _by_medium(result.outcomes, config.k, systems)
    if args.details:
        with args.details.open("w", encoding="utf-8") as fh:
            for outcome in result.outcomes:
                fh.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
    if args.json:
        for row in result.rows + medium_rows:
            print(json.dumps(row))
        return
    info = result.info
    print(f"\n{info['files']} files, {info['pages']} pages (indexed in {info['index_s']:.0f} s, "
          f"{args.threads} threads); queries: {info['queries']}")
    print(format_table(result.rows))
    if medium_rows:
        print("\nhand-written test questions by medium (PDF text layer, rendered PNG, scan):")
        print(format_table(medium_rows))
    timing = ", ".join(f"{name} {t['build_s']:.0f} s build + {t['ms_per_query']:.1f} ms/query"
                       for name, t in info["timings"].items())
    print(f"\ntimings: {timing}")


if __name__ == "__main__":
    main(ARGS)
