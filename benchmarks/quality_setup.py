"""Build the quality benchmark's corpus from Debian documentation packages.

    python benchmarks/quality_setup.py                 # install packages, build the corpus
    python benchmarks/quality_setup.py --max-pages 8   # a smaller corpus: 8 pages per PDF
    python benchmarks/quality_setup.py --corpus DIR --force

What it builds is described by ``benchmarks/eval_sets/corpus.json``: page ranges of real
prose manuals (extracted with pdfseparate + pdfunite, renumbered from 1) and single pages
of the same manuals rendered as PNGs or turned into "scans" (grayscale, a slight
rotation, noise, JPEG), which have no text layer and so go through OCR. Everything is
deterministic: the same packages give the same files. The documents stay out of the
repository; the packages are installed with ``apt-get install --no-install-recommends``
when running as root (otherwise the command to run is printed and the exit code is 6).

The corpus goes to ``$RETRIEVER_QUALITY_CORPUS`` or ``~/.cache/vision-retriever/quality``,
in a sub-directory per page cap (``full``, ``max8``...). A stamp file records what was
built; an unchanged spec is not rebuilt.
"""

from __future__ import annotations

__all__ = ["SPEC", "build_corpus", "corpus_dir", "load_spec"]

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parent / "eval_sets" / "corpus.json"
_STAMP = ".corpus-stamp.json"
_DPI = 150


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def corpus_dir(root: Path | None = None, max_pages: int | None = None) -> Path:
    base = root or Path(os.environ.get("RETRIEVER_QUALITY_CORPUS",
                                       "~/.cache/vision-retriever/quality")).expanduser()
    return base / ("full" if max_pages is None else f"max{max_pages}")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()[-400:]
        raise SystemExit(f"{' '.join(argv[:3])} ... failed: {message}")


def install_packages(spec: dict[str, Any]) -> None:
    entries = spec["documents"] + spec["images"]
    missing = sorted({e["package"] for e in entries if not Path(e["path"]).exists()})
    if not missing:
        return
    needed = [*missing, *([] if shutil.which("pdfunite") else ["poppler-utils"])]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("the benchmark documents are missing; install them first:\n"
              f"  sudo apt-get install --no-install-recommends {' '.join(needed)}", file=sys.stderr)
        raise SystemExit(6)
    print(f"installing {' '.join(needed)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *needed],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _extract(src: Path, first: int, last: int, out: Path, tmp: Path) -> None:
    pages = tmp / out.stem
    pages.mkdir()
    _run(["pdfseparate", "-f", str(first), "-l", str(last), str(src), str(pages / "p-%d.pdf")])
    parts = [str(pages / f"p-{n}.pdf") for n in range(first, last + 1)]
    _run(["pdfunite", *parts, str(out)])


def _render(src: Path, page: int, out_png: Path) -> None:
    _run(["pdftoppm", "-r", str(_DPI), "-png", "-f", str(page), "-l", str(page), "-singlefile",
          str(src), str(out_png.with_suffix(""))])


def _scan(png: Path, out: Path, seed: int) -> None:
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    image = Image.open(png).convert("L")
    # A page fed a little crooked: under 1.5 degrees, so the normalized boxes of the text
    # layer still hold to within a few thousandths of the page.
    angle = float(rng.uniform(0.4, 1.4) * rng.choice([-1, 1]))
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    pixels = np.asarray(image, np.float32)
    pixels = pixels * 0.92 + 10 + rng.normal(0.0, 9.0, pixels.shape)  # duller paper, sensor noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
    image.save(out, "JPEG", quality=70)


def _stamp(spec: dict[str, Any], max_pages: int | None) -> str:
    text = json.dumps({"spec": spec, "max_pages": max_pages, "dpi": _DPI}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build_corpus(out: Path, *, max_pages: int | None = None, force: bool = False,
                 install: bool = True) -> Path:
    """Build (or reuse) the corpus in ``out``; returns ``out``."""
    spec = load_spec()
    stamp = _stamp(spec, max_pages)
    names = [e["name"] for e in spec["documents"] + spec["images"]]
    stamp_file = out / _STAMP
    if (not force and stamp_file.exists() and all((out / n).exists() for n in names)
            and json.loads(stamp_file.read_text()).get("stamp") == stamp):
        return out
    if install:
        install_packages(spec)
    for tool in ("pdfseparate", "pdfunite", "pdftoppm"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install poppler-utils", file=sys.stderr)
            raise SystemExit(6)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quality-setup-") as tmp_name:
        tmp = Path(tmp_name)
        for doc in spec["documents"]:
            last = doc["last_page"] if max_pages is None else min(
                doc["last_page"], doc["first_page"] + max_pages - 1)
            _extract(Path(doc["path"]), doc["first_page"], last, out / doc["name"], tmp)
        for number, image in enumerate(spec["images"]):
            target = out / image["name"]
            if image["style"] == "render":
                _render(Path(image["path"]), image["page"], target)
            else:
                png = tmp / f"scan-{number}.png"
                _render(Path(image["path"]), image["page"], png)
                _scan(png, target, seed=1000 + number)
    stamp_file.write_text(json.dumps({"stamp": stamp, "max_pages": max_pages}))
    print(f"corpus ready in {out}: {len(spec['documents'])} PDF(s), "
          f"{len(spec['images'])} image page(s)", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help="root directory of corpora")
    ap.add_argument("--max-pages", type=int, default=None, help="pages per PDF at most")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    print(build_corpus(corpus_dir(args.corpus, args.max_pages), max_pages=args.max_pages,
                       force=args.force))


if __name__ == "__main__":
    main()
