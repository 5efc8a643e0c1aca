"""Page encoding throughput of ColPali and ColQwen2 on a GPU, and the fraction of bf16 peak.

    python benchmarks/encode_gpu.py                       # CUDA: full-size models, bf16
    python benchmarks/encode_gpu.py --batch-sizes 4,16,32 --pages 64
    python benchmarks/encode_gpu.py --smoke               # CPU: tiny configs, checks the code

No pretrained weights are reachable, and none are needed: random weights of the published
architectures (PaliGemma-3B at 448 px for ColPali v1.3, Qwen2-VL-2B for ColQwen2 v1.0,
built from configs in plugins.colpali.synthetic) have exactly the real cost. Pages go
through the plugin's own path: ColVisionEncoder.encode_pages -> EncodingEngine (processor
in a background thread, model in bf16 under autocast). Pages are letter-size renders at the
plugin's 120 dpi (1020 x 1320 px) with text-like strokes.

Three rates per batch size: "pages/s" end to end (processor + model, overlapped as the
engine runs them) and "model pages/s" (forward only, on batches prepared beforehand);
with ``--pipeline``, "files p/s": the same pages saved as PNG files and fed to the encoder
by the product's ingestion pipeline (``retriever.ingest.PageProducer``: worker processes
read and normalize the files while the main process encodes), as ``retriever index``
does, less the writes.

FLOPs per page, from the model config and the page's token counts (matmuls only: norms,
activations, softmax and the embedding lookup are left out):

    F = 2 * P_vis * N_patch + 2 * P_merge * N_img + 2 * P_txt * N_seq
      + a_vis * L_vis * N_patch^2 * d_vis + a_txt * L_txt * N_seq^2 * d_txt

P_vis: vision tower parameters (+ PaliGemma's projector; less Qwen's merger), applied to
each of N_patch patches; P_merge: Qwen2-VL's patch merger, applied to each of the N_img =
N_patch / 4 merged tokens; P_txt: language model parameters less the token embedding table,
plus the 128-d projection, applied to each of the N_seq tokens of the page's sequence;
the attention terms count QK^T and AV (2 * 2 * N^2 * d per layer; d = heads * head_dim),
a = 4 for bidirectional attention (SigLIP, Qwen's ViT, PaliGemma's prefix) and a = 2 for
causal attention (Qwen2's text model). Peak bf16 dense tensor FLOP/s come from a table of
data-sheet figures by GPU name, or from --peak-tflops.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: data-sheet bf16 dense tensor-core peaks, TFLOP/s (no sparsity); first match wins
PEAK_BF16_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4),
                    ("H200", 989.4), ("H20", 148.0), ("GH200", 989.4), ("B200", 2250.0),
                    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
                    ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.2), ("V100", 125.0)]

MODELS = {  # encoder name -> (full-size preset, tiny preset for --smoke)
    "colpali/v1.3": ("colpali-paligemma-3b-448", "colpali-tiny"),
    "colqwen2/v1.0": ("colqwen2-qwen2-vl-2b", "colqwen2-tiny"),
}


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of encoder names")
    ap.add_argument("--batch-sizes", default="1,4,8,16")
    ap.add_argument("--pages", type=int, default=48, help="pages per timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (median)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="bf16 dense peak of this GPU, when its name is not in the table")
    ap.add_argument("--pipeline", action="store_true",
                    help="also feed the pages from PNG files through the ingestion pipeline")
    ap.add_argument("--workers", type=int, default=None,
                    help="ingestion worker processes for --pipeline (default: one per core)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny configs on the CPU in float32: checks this script, measures nothing")
    return ap.parse_args()


def _peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return tflops
    return None


def _pages(n: int, width: int, height: int) -> list:
    """Deterministic letter-like pages: a heading, paragraphs of word strokes, a chart."""
    import numpy as np
    from PIL import Image, ImageDraw

    from retriever.types import Page

    rng = np.random.default_rng(0)
    pages = []
    for number in range(1, n + 1):
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        y = int(height * 0.06)
        draw.rectangle([width * 0.08, y, width * 0.08 + rng.integers(200, 500), y + 28],
                       fill=(20, 20, 60))
        y += 70
        while y < height * 0.9:
            x = int(width * 0.08)
            while x < width * 0.9:
                w = int(rng.integers(20, 90))
                draw.rectangle([x, y, x + w, y + 9], fill=(40, 40, 40))
                x += w + 10
            y += int(rng.choice([20, 20, 20, 44]))
        pages.append(Page(doc_id="bench", source="bench.pdf", page_number=number,
                          width=width, height=height, image=image))
    return pages


def _png_files(pages: list, directory: Path) -> list[Path]:
    files = []
    for page in pages:
        path = directory / f"page-{page.page_number:04d}.png"
        page.image.save(path, compress_level=1)
        files.append(path)
    return files


def _pipeline_rate(encoder, files: list[Path], batch_size: int, workers: int | None) -> float:
    """Pages/s from PNG files through PageProducer into ``encoder.encode_pages``."""
    from retriever.ingest import DEFAULT_MAX_PIXELS, content_hash
    from retriever.ingest.producer import DocumentJob, PageProducer, PageReady

    jobs = [DocumentJob(path, content_hash(path), str(path)) for path in files]
    start = time.perf_counter()
    pending, done = [], 0
    with PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=DEFAULT_MAX_PIXELS,
                      needs_image=True, ocr=None) as producer:
        for event in producer.run(jobs):
            if isinstance(event, PageReady):
                pending.append(event.page)
            if len(pending) == batch_size:
                done += len(encoder.encode_pages(pending))
                pending = []
        if pending:
            done += len(encoder.encode_pages(pending))
    return done / (time.perf_counter() - start)


def _params(module, skip: tuple = ()) -> int:
    return sum(p.numel() for name, p in module.named_parameters()
               if not any(name.startswith(s) for s in skip))


def flops_per_page(model, features) -> dict[str, float]:
    """Matmul FLOPs for one page (item 0 of ``features``), by the formula in the docstring."""
    vlm, cfg = model.vlm, model.config.vlm_config
    text_cfg = cfg.get_text_config()
    n_seq = int(features["attention_mask"][0].sum())
    head_dim = getattr(text_cfg, "head_dim", None) or (
        text_cfg.hidden_size // text_cfg.num_attention_heads)
    d_txt = text_cfg.num_attention_heads * head_dim  # attention width (Gemma: 8 x 256)
    p_txt = _params(vlm.language_model, skip=("embed_tokens",)) + _params(
        model.embedding_proj_layer)
    vis = cfg.vision_config
    if hasattr(vlm, "vision_tower"):  # PaliGemma: SigLIP + projector, bidirectional prefix
        n_patch = (vis.image_size // vis.patch_size) ** 2
        p_vis = _params(vlm.vision_tower) + _params(vlm.multi_modal_projector)
        p_merge, n_img = 0, n_patch
        l_vis, d_vis, a_txt = vis.num_hidden_layers, vis.hidden_size, 4
    else:  # Qwen2-VL: ViT over all patches, merger over 2x2 blocks, causal text model
        t, h, w = (int(v) for v in features["image_grid_thw"][0])
        n_patch = t * h * w
        n_img = n_patch // vis.spatial_merge_size ** 2
        p_vis = _params(vlm.visual, skip=("merger",))
        p_merge = _params(vlm.visual.merger)
        l_vis, d_vis, a_txt = vis.depth, vis.embed_dim, 2
    linear = 2 * p_vis * n_patch + 2 * p_merge * n_img + 2 * p_txt * n_seq
    attention = (4 * l_vis * n_patch ** 2 * d_vis
                 + a_txt * text_cfg.num_hidden_layers * n_seq ** 2 * d_txt)
    return {"flops": float(linear + attention), "attention": float(attention),
            "n_patch": n_patch, "n_seq": n_seq, "p_vis": p_vis, "p_txt": p_txt}


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _bench_model(name: str, preset: str, args, torch, device, dtype) -> list[dict]:
    from plugins.colpali.encoder import ColVisionEncoder
    from plugins.colpali.synthetic import build_synthetic
    from retriever.engine import EncodingEngine

    model, processor = build_synthetic(preset, dtype=dtype, device=device)
    width, height = (1020, 1320) if not args.smoke else (170, 220)
    pages = _pages(args.pages, width, height)
    scratch = tempfile.TemporaryDirectory(prefix="encode-gpu-")
    files = _png_files(pages, Path(scratch.name)) if args.pipeline else []
    cost = flops_per_page(model, processor.process_images([pages[0].image]))
    rows = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        engine = EncodingEngine(device=str(device), dtype=str(dtype).removeprefix("torch."),
                                batch_size=batch_size)
        encoder = ColVisionEncoder.from_loaded(name, model, processor, engine)
        encoder.encode_pages(pages[:batch_size])  # warm-up: kernels, allocator, autotuning
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        end_to_end, forward_only = [], []
        batches = [encoder.prepare_pages(pages[i:i + batch_size])
                   for i in range(0, len(pages), batch_size)]
        for _ in range(args.repeats):
            _sync(torch, device)
            start = time.perf_counter()
            encoder.encode_pages(pages)
            _sync(torch, device)
            end_to_end.append(len(pages) / (time.perf_counter() - start))
            start = time.perf_counter()
            autocast = (torch.autocast("cuda", dtype=dtype) if device.type == "cuda"
                        else contextlib.nullcontext())  # as the engine runs forward
            with torch.inference_mode(), autocast:
                for batch in batches:
                    encoder.forward(engine.to_device(batch))
            _sync(torch, device)
            forward_only.append(len(pages) / (time.perf_counter() - start))
        piped = ([_pipeline_rate(encoder, files, batch_size, args.workers)
                  for _ in range(args.repeats)] if files else [])
        peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
        rows.append({"model": name, "batch": batch_size, "pages_s": statistics.median(end_to_end),
                     "model_pages_s": statistics.median(forward_only), "mem_gib": peak_mem,
                     "files_pages_s": statistics.median(piped) if piped else None,
                     **cost})
    del model
    scratch.cleanup()
    return rows


def main() -> int:
    args = _parse()
    try:
        import torch
    except ImportError:
        print("encode_gpu: torch is not installed; pip install 'vision-retriever[colpali]'")
        return 0
    if not args.smoke and not torch.cuda.is_available():
        print("encode_gpu: no CUDA device here, so there is nothing to measure. Run it on a "
              "machine with an NVIDIA GPU, or use --smoke to check the script on the CPU.")
        return 0
    device = torch.device("cpu" if args.smoke else "cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)"
    peak = None if args.smoke else _peak_tflops(gpu, args.peak_tflops)
    rows = []
    for name in args.models.split(","):
        full, tiny = MODELS[name]
        rows += _bench_model(name, tiny if args.smoke else full, args, torch, device, dtype)
    if args.smoke:  # the full-size accounting, from shapes only (meta device, no memory)
        from plugins.colpali.synthetic import build_synthetic

        for name in args.models.split(","):
            model, processor = build_synthetic(MODELS[name][0], device="meta")
            cost = flops_per_page(model, processor.process_images(_pages(1, 1020, 1320)[0].image))
            print(f"full-size {name}: {cost['flops'] / 1e12:.2f} TFLOP/page "
                  f"(attention {cost['attention'] / 1e12:.2f}); {cost['n_patch']} patches, "
                  f"{cost['n_seq']} tokens; vision {cost['p_vis'] / 1e6:.0f}M, "
                  f"text {cost['p_txt'] / 1e6:.0f}M parameters")
    print(f"\ndevice: {gpu}; dtype: {str(dtype).removeprefix('torch.')}; "
          f"bf16 dense peak: {f'{peak:.0f} TFLOP/s' if peak else 'unknown (--peak-tflops)'}; "
          f"torch {torch.__version__}; {args.pages} pages x {args.repeats} runs (median)")
    head = (f"{'model':<15}{'batch':>6}{'tokens':>8}{'TFLOP/page':>11}{'pages/s':>9}"
            f"{'model p/s':>10}{'files p/s':>10}{'TFLOP/s':>9}{'of peak':>8}{'mem GiB':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        achieved = r["model_pages_s"] * r["flops"] / 1e12
        share = f"{achieved / peak:.1%}" if peak else "n/a"
        files = "-" if r["files_pages_s"] is None else f"{r['files_pages_s']:.1f}"
        print(f"{r['model']:<15}{r['batch']:>6}{r['n_seq']:>8}{r['flops'] / 1e12:>11.3f}"
              f"{r['pages_s']:>9.1f}{r['model_pages_s']:>10.1f}{files:>10}{achieved:>9.1f}"
              f"{share:>8}"
              f"{r['mem_gib']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
