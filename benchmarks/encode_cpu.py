"""CPU page-encoding throughput of a ViT-B/16 CLIP image tower: engine vs plain loops.

    python benchmarks/encode_cpu.py                    # 16 pages, 3 timed runs, 2 threads
    python benchmarks/encode_cpu.py --pages 16 --runs 5 --batch-sizes 4,8,16

No pretrained weights are reachable, and none are needed: a random-init CLIP with the
full-size ViT-B/16 image tower (openai/clip-vit-base-patch16's vision config: 224 px,
patch 16, width 768, 12 layers, projection 512) has exactly the real cost. The text tower
is tiny; it is never run. The checkpoint is saved to a temporary directory and loaded
through the clip plugin's own path (CLIPEncoder: AutoModel + AutoProcessor).

Side by side, in one process, on the same model object, processor and pages, with the
same thread count:

- per-image loop: processor + get_image_features one page at a time (the naive peer);
- batched loop: the same in batches, prepare and forward one after the other;
- engine: CLIPEncoder.encode_pages -> EncodingEngine (batches, processor of batch i+1 in a
  background thread while the model runs batch i).

Pages are letter-size renders at the plugin's 100 dpi (850 x 1100 px) with text-like
strokes, so preprocessing (resize, crop, normalize) has its real cost too. Figures are
medians over --runs timed runs after one warm-up, with the methods interleaved and rotated run
by run so that load from elsewhere falls on all of them alike. Peak memory is measured apart, in a fresh
process per method (a warm process's heap keeps what it once held): the rise of the resident
set (sampled every 2 ms with psutil, else /proc/self/statm) during one cold run over its
level after the model loaded and its (memory-mapped) weights were touched. "CPU ms/page"
is the process's CPU time (all threads) per page: the work done, which load from other
processes disturbs much less than wall time. "max |diff|" compares each method's vectors with the per-image loop's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=16, help="pages per timed run")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per method (median)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--batch-sizes", default="8", help="batch sizes for batched methods")
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one memory measurement
    ap.add_argument("--checkpoint", help=argparse.SUPPRESS)
    return ap.parse_args()


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Highest resident set size seen while the block runs, minus the level at its start."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def rise_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def _pages(n: int) -> list:
    """Letter pages at 100 dpi with lines of dark strokes (text-like, deterministic)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from retriever.types import Page

    rng = np.random.default_rng(0)
    pages = []
    for i in range(n):
        image = Image.new("RGB", (850, 1100), "white")
        draw = ImageDraw.Draw(image)
        for y in range(80, 1020, 22):
            x = 70
            while x < 760:
                w = int(rng.integers(12, 70))
                draw.rectangle([x, y, min(x + w, 780), y + 11], fill=(30, 30, 30))
                x += w + int(rng.integers(6, 12))
        pages.append(Page(doc_id="bench", source="bench.pdf", page_number=i + 1, width=850,
                          height=1100, image=image, dpi=100))
    return pages


def _save_checkpoint(directory: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, \
        CLIPTokenizer

    tokenizer = CLIPTokenizer()  # three special tokens: the text tower is never run
    config = CLIPConfig(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=16),
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=8,
                         max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        projection_dim=512,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(directory)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(
        directory)


def _per_image_loop(encoder) -> Callable[[list], "np.ndarray"]:
    return _batched_loop(encoder, 1)


def _batched_loop(encoder, batch: int) -> Callable[[list], "np.ndarray"]:
    import numpy as np
    import torch

    model, processor = encoder._model, encoder._image_processor

    def run(pages: list) -> np.ndarray:
        out = []
        for start in range(0, len(pages), batch):
            images = [p.image.convert("RGB") for p in pages[start:start + batch]]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                features = model.get_image_features(pixel_values=pixels).pooler_output
            out.append(torch.nn.functional.normalize(features.float(), dim=-1).numpy())
        return np.concatenate(out)  # (n_pages, 512)

    return run


def _engine(encoder, batch: int) -> Callable[[list], "np.ndarray"]:
    import numpy as np

    def run(pages: list) -> np.ndarray:
        encoder.engine.batch_size = batch
        return np.concatenate([mv.vectors for mv in encoder.encode_pages(pages)])

    return run


def _method(encoder, label: str, batch: int) -> Callable[[list], "np.ndarray"]:
    if label == "engine":
        return _engine(encoder, batch)
    return _per_image_loop(encoder) if batch == 1 else _batched_loop(encoder, batch)


def _split(encoder, pages: list, runs: int) -> tuple[int, float, float]:
    """``(batch, processor s/page, model s/page)``, medians, one after the other."""
    import torch

    prep, model = [], []
    for _ in range(runs):
        start = time.perf_counter()
        batch = encoder._prepare_pages(pages)
        prep.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.inference_mode():
            encoder._forward_pages(batch)
        model.append(time.perf_counter() - start)
    n = len(pages)
    return n, statistics.median(prep) / n, statistics.median(model) / n


def _load(checkpoint: str, threads: int):
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.set_verbosity_error()
    from plugins.clip.encoder import CLIPEncoder

    return CLIPEncoder(checkpoint, name="clip/vit-b-16", device="cpu", dtype="float32")


def _probe(args: argparse.Namespace) -> None:
    """Child process: peak RSS rise of one cold run of one method (a fresh heap)."""
    import torch

    label, batch = args.probe.rsplit(":", 1)
    encoder = _load(args.checkpoint, args.threads)
    # safetensors maps the weights lazily: touch them all so that the baseline holds them,
    # and start the BLAS thread pool, so the rise is what encoding itself allocates.
    with torch.inference_mode():
        sum(float(p.float().sum()) for p in encoder._model.parameters())
        torch.ones(64, 64) @ torch.ones(64, 64)
    pages = _pages(args.pages)
    run = _method(encoder, label, int(batch))
    with PeakRSS() as memory:
        run(pages)
    print(f"{memory.rise_mb:.1f}")


def _memory_in_child(args: argparse.Namespace, checkpoint: str, label: str, batch: int) -> float:
    # A process's heap keeps what it once held, so a warm process under-reports; each
    # method gets a fresh process and one cold run.
    # Three batches cover what the engine holds at once (one running, two prefetched).
    pages = min(args.pages, 3 * batch)
    command = [sys.executable, __file__, "--probe", f"{label}:{batch}", "--checkpoint",
               checkpoint, "--pages", str(pages), "--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = _parse()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.probe:
        return _probe(args)
    import numpy as np
    import torch

    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    names = [("per-image loop", 1)] + [(label, size) for size in sizes
                                       for label in ("batched loop", "engine")]
    pages = _pages(args.pages)
    with tempfile.TemporaryDirectory() as tmp:
        _save_checkpoint(Path(tmp))
        encoder = _load(tmp, args.threads)
        methods = [(label, batch, _method(encoder, label, batch)) for label, batch in names]

        # Runs are interleaved and rotated (A B C, B C A, C A B, ...) so that load from
        # elsewhere on the machine, and whatever one method leaves behind for the next
        # (heap, caches), fall on every method alike.
        reference = methods[0][2](pages)  # also the warm-up of the shared model
        for _, _, run in methods[1:]:
            run(pages)  # warm-up (first-touch allocations, thread pools)
        times: list[list[float]] = [[] for _ in methods]
        cpu: list[list[float]] = [[] for _ in methods]  # process CPU seconds, all threads
        diffs = [0.0] * len(methods)
        for r in range(args.runs):
            for m in [(r + k) % len(methods) for k in range(len(methods))]:
                label, batch, run = methods[m]
                start, start_cpu = time.perf_counter(), time.process_time()
                vectors = run(pages)
                times[m].append(time.perf_counter() - start)
                cpu[m].append(time.process_time() - start_cpu)
                diffs[m] = max(diffs[m], float(np.abs(vectors - reference).max()))
                print(f"{label:>15} batch {batch:>3}: {times[m][-1]:.2f}s", file=sys.stderr)
        split = _split(encoder, pages[:sizes[0]] if sizes else pages[:1], args.runs)
        del encoder, methods
        memory = [_memory_in_child(args, tmp, label, batch) for label, batch in names]

    rates = [len(pages) / statistics.median(t) for t in times]
    print(f"\none batch of {split[0]}: processor {split[1] * 1e3:.0f} ms/page, model "
          f"{split[2] * 1e3:.0f} ms/page (the most that overlapping the two can save is the "
          f"smaller share)")
    print(f"CLIP ViT-B/16 image tower (random init, 224 px), {args.pages} pages of 850x1100, "
          f"{args.threads} threads, torch {torch.__version__}, median of {args.runs} runs")
    print(f"{'method':<16}{'batch':>6}{'pages/s':>10}{'vs loop':>9}{'CPU ms/page':>13}"
          f"{'peak RSS +MB':>14}{'max |diff|':>12}")
    for m, ((label, batch), rate, rise, diff) in enumerate(zip(names, rates, memory, diffs)):
        cpu_ms = statistics.median(cpu[m]) / len(pages) * 1e3
        print(f"{label:<16}{batch:>6}{rate:>10.2f}{rate / rates[0]:>8.2f}x{cpu_ms:>13.0f}"
              f"{rise:>14.0f}{diff:>12.1e}")


if __name__ == "__main__":
    main()
