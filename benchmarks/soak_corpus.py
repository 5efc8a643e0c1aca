"""The crash soak's corpus (``benchmarks/crash_soak.py``): sample documents, real Debian
PDFs cut to 10-16 pages and a page rendered to PNG, plus the phrases its searches check.

Built under the soak's work directory and kept between runs; a source PDF that is not
installed is left out with a note rather than failing the soak.
"""

from __future__ import annotations

__all__ = ["build_corpus", "known_phrases", "SAMPLES"]

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
DOC = Path("/usr/share/doc")
#: name -> (source PDF, first page, last page); pages cut out with pdfseparate/pdfunite
CUTS_FULL = {
    "docs": {"tasn1-1-16.pdf": (DOC / "libtasn1-doc/libtasn1.pdf", 1, 16),
             "mime-1-12.pdf": (DOC / "shared-mime-info/shared-mime-info-spec.pdf", 1, 12)},
    "pool": {"tasn1-17-28.pdf": (DOC / "libtasn1-doc/libtasn1.pdf", 17, 28),
             "mime-13-17.pdf": (DOC / "shared-mime-info/shared-mime-info-spec.pdf", 13, 17),
             "bashref-30-39.pdf": (DOC / "bash/bashref.pdf", 30, 39)},
}
CUTS_SMALL: dict[str, dict[str, tuple[Path, int, int]]] = {"docs": {}, "pool": {}}
#: name -> (source PDF, page) rendered to PNG at 100 dpi (OCR reads them)
RENDERS_FULL = {"docs": {"tasn1-p20.png": (DOC / "libtasn1-doc/libtasn1.pdf", 20)},
                "pool": {"mime-p5.png": (DOC / "shared-mime-info/shared-mime-info-spec.pdf", 5)}}
SAMPLES_FULL = {"docs": ["annual-report.pdf", "invoice.pdf", "slide.pdf", "scanned-letter.png",
                         "scanned-receipt.pdf"], "pool": []}
SAMPLES_SMALL = {"docs": ["invoice.pdf", "slide.pdf"], "pool": ["annual-report.pdf"]}


def _cut(src: Path, first: int, last: int, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdfseparate", "-f", str(first), "-l", str(last), str(src),
                        f"{tmp}/p-%d.pdf"], check=True, capture_output=True)
        pages = [f"{tmp}/p-{n}.pdf" for n in range(first, last + 1)]
        # pdfunite warns about recursive dictionaries on some Debian PDFs: harmless noise
        subprocess.run(["pdfunite", *pages, str(out)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _render(src: Path, page: int, out: Path) -> None:
    base = out.with_suffix("")
    subprocess.run(["pdftoppm", "-r", "100", "-f", str(page), "-l", str(page), "-png",
                    "-singlefile", str(src), str(base)], check=True, capture_output=True)


def build_corpus(root: Path, size: str) -> tuple[list[Path], list[Path], list[str]]:
    """``(corpus files, pool files, notes)``: made under ``root`` (kept between runs)."""
    cuts = CUTS_SMALL if size == "small" else CUTS_FULL
    renders = {} if size == "small" else RENDERS_FULL
    samples = SAMPLES_SMALL if size == "small" else SAMPLES_FULL
    notes: list[str] = []
    made: dict[str, list[Path]] = {"docs": [], "pool": []}
    for part in ("docs", "pool"):
        folder = root / f"{size}-{part}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in samples[part]:
            out = folder / name
            if not out.exists():
                shutil.copyfile(SAMPLES / name, out)
            made[part].append(out)
        for name, (src, first, last) in cuts[part].items():
            out = folder / name
            if not src.exists():
                notes.append(f"{src} not installed: {name} left out")
                continue
            if not out.exists():
                _cut(src, first, last, out)
            made[part].append(out)
        for name, (src, page) in renders.get(part, {}).items():
            out = folder / name
            if not src.exists():
                notes.append(f"{src} not installed: {name} left out")
                continue
            if not out.exists():
                _render(src, page, out)
            made[part].append(out)
    return made["docs"], made["pool"], notes


def _pdf_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         text=True, errors="replace")
    return out.stdout.split("\f")


def known_phrases(files: list[Path]) -> dict[str, str]:
    """``phrase -> doc_id``: per text PDF, a line of its middle page found in no other file
    (the samples: the answers their queries.json names)."""
    from retriever.ingest import content_hash

    answers: dict[str, str] = {}
    for q in json.loads((SAMPLES / "queries.json").read_text()):
        answers.setdefault(q["source"], q["answer"])
    texts = {f: " ".join(" ".join(_pdf_text(f)).split()) for f in files if f.suffix == ".pdf"}
    phrases: dict[str, str] = {}
    for f in files:
        if f.name in answers and len(answers[f.name]) > 12:
            phrases[answers[f.name]] = content_hash(f)
            continue
        if f.suffix != ".pdf" or f.name in SAMPLES_FULL["docs"]:
            continue
        pages = _pdf_text(f)
        lines = [" ".join(line.split()) for line in pages[len(pages) // 2].splitlines()]
        for line in sorted(lines, key=len, reverse=True):
            words = re.findall(r"[A-Za-z]{3,}", line)
            if not 4 <= len(words) <= 10 or len(line) > 80:
                continue
            if any(line in t for g, t in texts.items() if g != f):
                continue
            phrases[line] = content_hash(f)
            break
    return phrases
