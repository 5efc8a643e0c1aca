"""Peak memory of ingesting one long PDF (``benchmarks/ingest.py``'s ``memory`` rows), each
way in a fresh process: ``old`` (the document-at-once path before the page producer),
``producer-keep`` (records kept per document) and ``producer-drop`` (records dropped per
batch, as staging does).

    python benchmarks/ingest_memory.py MODE PDF [--workers N] [--threads T] [--rss-encoder fake|minilm]
"""

from __future__ import annotations

__all__ = ["memory_rows", "probe"]

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ingest_parts import encoder_for, jobs_for, warm  # noqa: E402


class _LineVectors:
    """minilm's output shape (one 384-d vector per text line, its box) without the model."""

    name, dim, kind, dpi = "bench/lines", 384, "multi", 150
    needs_image, needs_regions = False, True

    def encode_pages(self, pages):
        import numpy as np

        from retriever.types import MultiVector

        out = []
        for page in pages:
            boxes = [line.bbox for region in page.regions for line in region.lines]
            vectors = np.random.default_rng(len(boxes)).standard_normal((len(boxes), 384))
            out.append(MultiVector.normalized(vectors.astype(np.float32),
                                              np.asarray(boxes, np.float32).reshape(-1, 4)))
        return out


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def probe(mode: str, path: Path, workers: int, rss_encoder: str, threads: int) -> dict:
    from retriever.ingest import open_document
    from retriever.ingest.producer import PageProducer, PageReady
    from retriever.pipeline import page_batch
    from retriever.regions import text_layer_regions
    from retriever.types import PageRecord

    encoder = _LineVectors() if rss_encoder == "fake" else encoder_for(threads)
    if rss_encoder != "fake":
        warm(encoder)
    baseline = _vmhwm_mb()
    per_call = page_batch(encoder)
    kept: list[PageRecord] = []
    batch = []
    started = time.perf_counter()

    def flush() -> None:
        vectors = encoder.encode_pages(batch)
        records = [PageRecord.from_page(p, v) for p, v in zip(batch, vectors)]
        if mode != "producer-drop":
            kept.extend(records)
        batch.clear()

    if mode == "old":  # what pipeline._pages_with_regions did before the producer
        layer = text_layer_regions(path)
        document = open_document(path, dpi=encoder.dpi, render=False)
        for page in document.pages():
            page.regions, page.has_text_layer = layer.get(page.page_number) or [], True
            batch.append(page)
            if len(batch) >= per_call:
                flush()
    else:
        (job,) = jobs_for([path])
        with PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=64_000_000,
                          needs_image=False, ocr=None) as producer:
            for event in producer.run([job]):
                if isinstance(event, PageReady):
                    batch.append(event.page)
                    if len(batch) >= per_call:
                        flush()
                del event
    if batch:
        flush()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"mode": mode, "pages": len(kept) if kept else None,
            "seconds": round(time.perf_counter() - started, 1),
            "baseline_mb": round(baseline, 1), "peak_mb": round(_vmhwm_mb(), 1),
            "largest_child_mb": round(children, 1)}


def memory_rows(args: argparse.Namespace, big: Path) -> list[dict]:
    rows = []
    for mode in ("old", "producer-keep", "producer-drop"):
        argv = [sys.executable, __file__, mode, str(big),
                "--workers", str(args.workers), "--threads", str(args.threads),
                "--rss-encoder", args.rss_encoder]
        done = subprocess.run(argv, check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(kind="memory", encoder=args.rss_encoder,
                   workers=0 if mode == "old" else args.workers)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("old", "producer-keep", "producer-drop"))
    ap.add_argument("pdf", type=Path)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rss-encoder", choices=("fake", "minilm"), default="fake")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    print(json.dumps(probe(args.mode, args.pdf, args.workers, args.rss_encoder,
                           args.threads)))


if __name__ == "__main__":
    main()
