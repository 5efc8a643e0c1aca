"""Sweep grounding options given the right page: how each choice moves the region metrics.

    python benchmarks/quality.py --data-dir /tmp/eval --systems ours   # once: the eval index
    python benchmarks/grounding_sweep.py --data-dir /tmp/sweep --eval-data-dir /tmp/eval \\
        -g level=paragraph,line,block -g select=margin,gap,percentile -g margin=0.5,0.7
    python benchmarks/grounding_sweep.py --data-dir /tmp/sweep --lexical -g lexical_weight=0,0.5

Grounding is measured given the right page (as in ``retriever eval``), so this skips search
and grounds every query on its answer page directly, for every combination of the ``-g``
values, in one process: a sweep of dozens of settings takes seconds once the index exists.

Query sets (TUNING DISCIPLINE: defaults are chosen on these, never on the test split):

* ``tune``: phrase and keyword queries generated from documents outside the evaluation
  corpus (``--tune-pdf``, default the libtasn1 manual, the shared-mime-info spec and 40
  pages each of the Asymptote and GLPK manuals), indexed into ``DATA_DIR`` as collection
  ``tune`` on first use;
* ``tune-ocr``: ``--tune-images`` (default 30) of their pages rendered as PNGs and as
  "scans" (the quality corpus's recipe) and OCR'd, with those pages' queries;
* ``dev``: the dev split of ``eval_sets/questions.jsonl``, over the evaluation corpus as
  ``benchmarks/quality.py --data-dir DIR`` indexed it (``--eval-data-dir DIR``; skipped
  when not given). ``--split test`` reports the test split instead: once, at the end.

Columns are those of ``retriever eval`` (see ``retriever.evaluation.metrics``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import random
import sys
import tempfile
from pathlib import Path

DEFAULT_TUNE = ["/usr/share/doc/libtasn1-doc/libtasn1.pdf",
                "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
                "/usr/share/doc/asymptote/asymptote.pdf:10-49",
                "/usr/share/doc/glpk-doc/glpk.pdf:10-49"]
QUESTIONS = Path(__file__).resolve().parent / "eval_sets" / "questions.jsonl"


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="where the tune collection lives")
    ap.add_argument("--tune-pdf", action="append", default=None,
                    help="PDF outside the corpus, optionally PATH:FIRST-LAST (repeatable)")
    ap.add_argument("--tune-images", type=int, default=30,
                    help="also render this many tune pages as PNGs and scans (OCR)")
    ap.add_argument("--eval-data-dir", type=Path, default=None,
                    help="data dir of benchmarks/quality.py --data-dir (hand-written questions)")
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--max-queries", type=int, default=300, help="generated, per kind")
    ap.add_argument("-g", "--grid", action="append", default=[],
                    help="OPTION=V1,V2,... (a GroundingOptions field)")
    ap.add_argument("--lexical", action="store_true",
                    help="give ground() lexical evidence too: the share of the query's content "
                         "words in each unit (a stand-in for the hybrid search's)")
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))


def _value(text: str):
    from cli.eval_cmd import parse_value

    return parse_value(text)


def _grid(specs: list[str]) -> list[dict]:
    axes = []
    for spec in specs:
        key, _, values = spec.partition("=")
        axes.append([(key.strip(), _value(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] or [{}]


def _cases(retriever, queries) -> list[tuple]:
    """(query, query vectors, answer page record) for queries whose page is indexed."""
    by_name = {Path(p).name: doc for doc, paths in retriever.indexer.paths().items()
               for p in paths}
    wanted = [(q, f"{by_name[Path(q.source).name]}:{q.page}") for q in queries
              if Path(q.source).name in by_name]
    keys = sorted({key for _, key in wanted})
    records = {}
    for start in range(0, len(keys), 64):
        for key, rec in zip(keys[start:start + 64], retriever.indexer.get(keys[start:start + 64])):
            records[key] = rec
    vectors = retriever.encoder.encode_queries([q.text for q, _ in wanted])
    return [(q, v, records[key]) for (q, key), v in zip(wanted, vectors)]


def _tune_docs(args) -> list[Path]:
    """The tune PDFs, page ranges extracted once into ``DATA_DIR/tune-docs``."""
    from quality_setup import _extract

    out = args.data_dir / "tune-docs"
    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for spec in args.tune_pdf or DEFAULT_TUNE:
        path, _, pages = spec.partition(":")
        if not pages:
            docs.append(Path(path))
            continue
        first, _, last = pages.partition("-")
        target = out / f"{Path(path).stem}-p{first}-{last}.pdf"
        if not target.exists():
            with tempfile.TemporaryDirectory() as tmp:
                _extract(Path(path), int(first), int(last), target, Path(tmp))
        docs.append(target)
    return docs


def _tune_images(args, pdfs: list[Path], queries: list) -> tuple[list[Path], list]:
    """Pages of the tune PDFs as PNGs and "scans" (OCR'd), with their pages' queries.

    The answer boxes come from the text layer: normalized, they hold on the rendered page
    (and within a few thousandths on a scan, which is rotated by under 1.5 degrees).
    """
    from quality_setup import _render, _scan

    rng = random.Random(1)
    by_page: dict[tuple[str, int], list] = {}
    for q in queries:
        by_page.setdefault((q.source, q.page), []).append(q)
    chosen = sorted(rng.sample(sorted(by_page), min(args.tune_images, len(by_page))))
    out = args.data_dir / "tune-images"
    out.mkdir(parents=True, exist_ok=True)
    files, moved = [], []
    for number, (source, page) in enumerate(chosen):
        style = "scan" if number % 2 else "png"
        target = out / f"{Path(source).stem}-p{page}.{'jpg' if style == 'scan' else 'png'}"
        if not target.exists():
            if style == "png":
                _render(Path(source), page, target)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    png = Path(tmp) / "page.png"
                    _render(Path(source), page, png)
                    _scan(png, target, seed=2000 + number)
        files.append(target)
        moved += [dataclasses.replace(q, source=target.name, page=1,
                                      kind=f"{q.kind}[{style}]") for q in by_page[source, page]]
    return files, moved


def _tune_sets(args) -> list[tuple[str, list[tuple]]]:
    from retriever import Retriever
    from retriever.evaluation import generate_queries
    from retriever.regions import text_layer_regions

    pdfs = _tune_docs(args)
    made = generate_queries({str(p): text_layer_regions(p) for p in pdfs},
                            max_queries=args.max_queries, seed=0)
    sets = []
    r = Retriever("tune", data_dir=args.data_dir)
    for failure in r.index(pdfs).failed:
        print(f"warning: {failure}", file=sys.stderr)
    sets.append(("tune", _cases(r, made.queries)))
    if args.tune_images:
        images, queries = _tune_images(args, pdfs, made.queries)
        r = Retriever("tune-images", data_dir=args.data_dir)
        for failure in r.index(images).failed:
            print(f"warning: {failure}", file=sys.stderr)
        sets.append(("tune-ocr", _cases(r, queries)))
    return sets


def _question_set(args) -> tuple[str, list[tuple]]:
    from retriever import Retriever
    from retriever.evaluation import load_queries

    r = Retriever("eval", data_dir=args.eval_data_dir)
    queries = [q for q in load_queries(QUESTIONS) if q.split == args.split]
    return f"question/{args.split}", _cases(r, queries)


def _word_overlap(query: str):
    """Lexical evidence per unit: the share of the query's content words it contains."""
    from retriever.evaluation.generate import STOPWORDS, normalize_tokens

    wanted = {t for t in normalize_tokens(query) if len(t) > 2 and t not in STOPWORDS}

    def score(texts):
        if not wanted:
            return [0.0] * len(texts)
        return [len(wanted & set(normalize_tokens(t))) / len(wanted) for t in texts]

    return score


def main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from retriever.evaluation.metrics import grounding_score, mean_metrics
    from retriever.grounding import GroundingOptions, ground

    sets = _tune_sets(args)
    if args.eval_data_dir:
        sets.append(_question_set(args))
    columns = ["iou", "top@0.25", "top@0.5", "top@0.7", "best@0.5", "precision", "area",
               "selected"]
    print(f"{'set':<16} {'kind':<9} {'n':>4} " + " ".join(f"{c:>9}" for c in columns)
          + "  options")
    for combo in _grid(args.grid):
        options = GroundingOptions().with_(**combo)
        for name, cases in sets:
            by_kind: dict[str, list[dict]] = {}
            for query, qv, record in cases:
                aggregate = options.aggregate or "max"  # text/minilm's choice
                lexical = _word_overlap(query.text) if args.lexical else None
                hits = ground(qv, record.embedding, record.regions,
                              options.with_(aggregate=aggregate), lexical=lexical)
                score = grounding_score([h.bbox for h in hits], query.bbox)
                by_kind.setdefault(query.kind, []).append(score.as_dict())
            for kind, rows in sorted(by_kind.items()):
                m = mean_metrics(rows)
                print(f"{name:<16} {kind:<9} {len(rows):>4} "
                      + " ".join(f"{m[c]:>9.3f}" for c in columns)
                      + f"  {combo}", flush=True)


if __name__ == "__main__":
    main(ARGS)
