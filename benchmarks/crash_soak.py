"""Crash soak: SIGKILL ``Retriever.index`` at random moments, check the collection, resume.

    python benchmarks/crash_soak.py                          # 200 kills, lancedb and faiss
    python benchmarks/crash_soak.py --kills 20               # a quick look
    python benchmarks/crash_soak.py --backend faiss --kills 50 --json
    python benchmarks/crash_soak.py --corpus small --kills 4 --json    # what the test runs

Corpus (built in ``--workdir``): the sample documents of ``samples/`` (text PDFs, a scanned
PDF and a scanned PNG that need tesseract), real PDFs that Debian ships cut to 10-16 pages
with ``pdfseparate``/``pdfunite`` (so a document spans several page batches) and a PNG
rendered from one of them; a pool of further real documents is what the corpus mutates
into. ``--corpus small`` (for the test) is two one-page sample PDFs and a 3-page one to
mutate into, no OCR, encoded two pages per batch (``--page-batch``) so that the 3-page
document still spans two batches.

How: the parent process imports retriever and torch (one thread) and builds the default
encoder (text/minilm, its default page backend) once; it never opens a collection nor an
onnxruntime session itself (LanceDB and onnxruntime start threads that a fork does not
carry), so each child opens its own. Every trial ``fork()``s a child that runs
``Retriever(...).index([corpus], sync=True)`` with that encoder, and the child dies by
SIGKILL in one of two ways, half the trials each: the parent kills its process group
(tesseract and poppler included) after a random delay, uniform over the time an
uninterrupted run of the same work takes (measured per document by a calibration run),
or the child kills itself just before or just after its k-th write, k uniform over the
writes that run makes (the write seams of ``tests/consistency.py``: staged batches, FAISS
files, LanceDB table creation, merge-insert batches, deletes, the full-text refresh), so
that kills land inside and between the steps of commits, not only while pages are
encoded. Before most trials the corpus changes (a file is edited, i.e. gets a new
version; takes another document's content; a file is added, copied or deleted), some
trials start from an empty collection and some re-index with ``force``, so that replace,
delete, relink and create are killed as well as plain adds.

After each kill a forked child checks the collection (``tests/consistency.py``: it opens;
each document's pages are exactly 1..n once each; each document is the current or, for a
file the killed run had not reached, the previous content of its file; no file stored
twice or lost; searches return whole documents only), then another child resumes (the
same ``index`` again, uninterrupted) and the collection is checked again, now as a
complete run (everything current, nothing staged). Reported per backend: kills (trials
whose child finished before its kill are counted apart), kills that found a problem, the
problems, where the kills landed, and the pages the resumes encoded against the minimum
(the pages of documents not committed at the kill, less those staged by the killed run
when the collection stages page batches: ``Retriever.pending()``), plus the work the kills
threw away (pages the killed run had reached of documents neither committed nor staged).

Runs the backends side by side (one lane per backend; ``--lanes 1`` for one after the
other). Exit status 1 when any kill left a problem.
"""

from __future__ import annotations

import os
import sys

# before anything imports torch, OpenMP or the tokenizers: no thread pools a fork would
# inherit half-alive, and tesseract on one thread per process
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_THREAD_LIMIT"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RETRIEVER_LOAD_PLUGINS", "")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "tests")]

COLLECTION = "soak"
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


# -- the corpus -------------------------------------------------------------------------


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


# -- the preloaded encoder, and the child processes ---------------------------------------


_ENCODER: Any = None


def preload_encoder(page_batch: int | None = None, page_backend: str = "auto") -> Any:
    """Build text/minilm once, here, and have every ``Retriever`` of this process and its
    forks use it. ``page_batch``: pages per encoder call, which is also the pages per
    staged batch. ``page_backend``: the encoder's ``backend`` option, where it has one
    (auto: onnxruntime on a CPU). Torch is loaded and warmed up here, on one thread; an
    onnxruntime session never is (its thread pools would not survive a fork): each child
    opens its own, from the ONNX export that a first child makes (cached, once)."""
    global _ENCODER
    import torch

    torch.set_num_threads(1)
    from retriever import plugin_host
    from retriever.errors import UsageError
    from retriever.pipeline import document_records

    create = plugin_host.Registry.create

    def create_shared(self: Any, kind: str, name: str, **options: Any) -> Any:
        if kind == "encoder" and name == "text/minilm" and _ENCODER is not None:
            return _ENCODER
        return create(self, kind, name, **options)

    registry = plugin_host.get_registry()
    on_torch = page_backend == "torch"
    try:
        _ENCODER = create(registry, "encoder", "text/minilm", backend=page_backend,
                          query_backend="torch" if on_torch else "auto")
    except (UsageError, TypeError):  # an encoder without the option: pages run on torch
        _ENCODER, on_torch = create(registry, "encoder", "text/minilm",
                                    query_backend="torch"), True
    plugin_host.Registry.create = create_shared  # type: ignore[method-assign]
    if page_batch:
        _ENCODER.page_batch = page_batch  # the pipeline's knob (Encoder.page_batch)

    def warm_up(fd: int | None = None) -> None:
        document_records(SAMPLES / "invoice.pdf", _ENCODER, None, max_pixels=64_000_000)
        _ENCODER.encode_queries(["warm up"])

    if on_torch:
        warm_up()
    else:  # the export (and any first-run cost) in a child; this process stays thread-free
        child = Child(*_fork(warm_up)).run(limit=900)
        if child.status != 0:
            raise SystemExit(f"the encoder's warm-up failed: {child.last('error')}")
    return _ENCODER


def _send(fd: int, event: dict[str, Any]) -> None:
    data = (json.dumps(event) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _fork(fn: Callable[..., Any], *args: Any) -> tuple[int, int]:
    """Run ``fn(write_fd, *args)`` in a forked child (its own process group); -> pid, the
    read end of its event pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read)
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            fn(write, *args)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
            try:
                _send(write, {"e": "error", "error": f"{type(exc).__name__}: {exc}",
                              "trace": traceback.format_exc()[-4000:]})
            except OSError:
                pass
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _report_writes(fd: int, kill_at: int | None, after: bool) -> None:
    """In a child: announce each write of a commit on the event pipe, and SIGKILL this
    process just before (or just after) the ``kill_at``-th one."""
    from consistency import instrument_writes

    count = 0

    def before_write(kind: str, detail: str) -> None:
        nonlocal count
        count += 1
        _send(fd, {"e": "write", "what": kind, "detail": detail, "n": count,
                   "t": time.monotonic()})
        if count == kill_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)

    def after_write(kind: str, detail: str) -> None:
        if count == kill_at and after:
            os.kill(os.getpid(), signal.SIGKILL)

    instrument_writes(before_write, after_write)


def _report_of(report: Any) -> dict[str, Any]:
    out = report.to_dict()
    out["encoded"] = int(getattr(report, "encoded_pages", report.pages))
    out["reused"] = int(getattr(report, "reused_pages", 0))
    out["staging"] = hasattr(report, "encoded_pages")
    return out


def _child_index(fd: int, home: str, backend: str, folder: str, force: bool,
                 announce_writes: bool, kill_at: int | None = None, after: bool = False) -> None:
    from retriever import Retriever

    if announce_writes:
        _report_writes(fd, kill_at, after)

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "files":
            _send(fd, {"e": "file", "path": detail, "t": time.monotonic()})
        elif stage == "pages":
            _send(fd, {"e": "page", "n": done, "path": detail, "t": time.monotonic()})

    _send(fd, {"e": "start", "t": time.monotonic()})
    with Retriever(COLLECTION, data_dir=home, indexer=backend) as r:
        report = r.index([folder], sync=True, force=force, progress=progress)
    _send(fd, {"e": "done", "t": time.monotonic(), "report": _report_of(report)})


def _child_check(fd: int, home: str, state: dict[str, Any], before: dict[str, Any],
                 complete: bool, phrases: dict[str, str], forced: bool = False) -> None:
    from consistency import check_collection, pending_pages
    from retriever import Retriever

    problems = check_collection(home, COLLECTION, state, before=before, complete=complete,
                                phrases=phrases, forced=forced)
    stored: list[str] = []
    pending: dict[str, int] = {}
    r = Retriever(COLLECTION, data_dir=home)
    try:
        if r.exists:
            try:
                stored = sorted(r.documents())
                pending = pending_pages(r)
            except Exception:  # noqa: BLE001 - the check above already said why
                pass
    finally:
        r.close()
    _send(fd, {"e": "checked", "problems": problems, "stored": stored, "pending": pending})


class Child:
    """A forked child's events, read until it exits (or is killed)."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self.started = time.monotonic()
        self.status: int | None = None
        self.killed_at: float | None = None
        self.phase_at_kill = ""

    def _read(self, timeout: float | None) -> bool:
        """Read what is there (waiting up to ``timeout``); False at end of file."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        data = os.read(self.fd, 1 << 16)
        if not data:
            return False
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.events.append(json.loads(line))
        return True

    def kill(self) -> None:
        self.killed_at = time.monotonic() - self.started
        self.phase_at_kill = _phase(self.events)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def run(self, *, kill_after: float | None = None, limit: float = 600.0) -> Child:
        """Read events until the child ends; SIGKILL it ``kill_after`` seconds in.
        ``limit``: kill a hung child. A child that killed itself (at a write) counts as
        killed there."""
        alive = True
        while alive:
            now = time.monotonic() - self.started
            if self.killed_at is None and now > limit:
                self.kill()
                self.phase_at_kill = "hung"
            pending = kill_after is not None and self.killed_at is None
            if pending and now >= kill_after:
                self.kill()
                continue
            if pending:
                timeout = kill_after - now
            elif self.killed_at is None:
                timeout = max(0.05, limit - now)
            else:
                timeout = 5.0
            alive = self._read(min(timeout, 1.0))
        os.close(self.fd)
        _, self.status = os.waitpid(self.pid, 0)
        if self.killed_at is None and os.WIFSIGNALED(self.status) \
                and os.WTERMSIG(self.status) == signal.SIGKILL:
            self.killed_at = time.monotonic() - self.started
            write = self.last("write")
            self.phase_at_kill = f"at a write ({write['what']})" if write else "at a write"
            try:
                os.killpg(self.pid, signal.SIGKILL)  # anything it started goes too
            except ProcessLookupError:
                pass
        return self

    def last(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["e"] == kind), None)


def _phase(events: list[dict[str, Any]]) -> str:
    kinds = [e["e"] for e in events]
    if "file" not in kinds:
        return "startup"
    last = kinds[-1]
    return {"page": "encoding", "write": "writing", "file": "between files"}.get(last, last)


# -- one lane: one backend's trials ---------------------------------------------------------


def _copy_over(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Lane:
    def __init__(self, backend: str, workdir: Path, files: list[Path], pool: list[Path],
                 phrases: dict[str, str], rng: random.Random, log: Callable[[str], None]):
        from consistency import corpus_state

        self.backend, self.rng, self.log = backend, rng, log
        self.home = workdir / f"home-{backend}"
        self.folder = workdir / f"corpus-{backend}"
        for d in (self.home, self.folder):
            shutil.rmtree(d, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, self.folder / f.name)
        self.initial = sorted(p.name for p in self.folder.iterdir())
        self.pool = pool
        self.phrases = phrases
        self.info = corpus_state([*files, *pool])  # every content this lane can hold
        self.seconds: dict[str, float] = {}
        self.writes: dict[str, int] = {}
        self.create_writes = 0
        self.overhead = 1.0
        self.rates: dict[str, float] = {"": 1.0}
        self.writes_per_doc = 2
        self.added = 0
        self.edits = 0
        self.validated: set[str] = set()
        self.result: dict[str, Any] = {
            "backend": backend, "kills": 0, "finished_before_kill": 0, "trials": 0,
            "inconsistent_kills": 0, "problems": [], "resume_failures": 0,
            "encoded_after_resume": 0, "minimum": 0, "excess": 0, "lost_pages": 0,
            "kill_phase": Counter(), "kinds": Counter(), "cycle_s": [], "check_s": [],
            "staging": None, "phrases_dropped": 0}

    # state of the corpus folder
    def state(self) -> dict[str, tuple[str, int]]:
        from consistency import corpus_state

        return corpus_state(sorted(self.folder.iterdir()))

    def _check(self, state: dict, before: dict, complete: bool,
               forced: bool = False) -> Child:
        """Check in a forked child. A few phrases per check (all of them would cost more
        than the kill); a phrase is used after a kill only once a complete check found its
        document, and one that a complete check does not find the first time is dropped
        (its line is not distinctive enough), not reported."""
        t = time.monotonic()
        held = {d for d, _ in state.values()} | {d for d, _ in before.values()}
        candidates = sorted(p for p, d in self.phrases.items()
                            if d in held and (complete or p in self.validated))
        chosen = {p: self.phrases[p] for p in self.rng.sample(candidates, min(3, len(candidates)))}
        child = Child(*_fork(_child_check, str(self.home), state, before, complete, chosen,
                             forced))
        child.run(limit=300)
        checked = child.last("checked")
        if checked is not None and complete:
            stored = set(checked["stored"])
            for phrase, doc_id in chosen.items():
                missed = [p for p in checked["problems"] if "did not find" in p
                          and repr(phrase) in p]
                if missed and phrase not in self.validated:
                    del self.phrases[phrase]
                    self.result["phrases_dropped"] += 1
                    checked["problems"] = [p for p in checked["problems"] if p not in missed]
                elif not missed and doc_id in stored:
                    self.validated.add(phrase)
        self.result["check_s"].append(time.monotonic() - t)
        return child

    def calibrate(self) -> dict[str, Any]:
        """The collection the kills start from: the corpus indexed whole, uninterrupted,
        each file timed and its writes counted (a pool document, not indexed yet, is
        estimated from its pages at the median of its kind)."""
        child = Child(*_fork(_child_index, str(self.home), self.backend, str(self.folder),
                             False, True))
        child.run(limit=3600)
        done = child.last("done")
        if done is None:
            raise RuntimeError(f"calibration run failed: {child.last('error')}")
        state = self.state()
        marks = [i for i, e in enumerate(child.events) if e["e"] == "file"]
        per_page: dict[str, list[float]] = {}
        for this, after in zip(marks, marks[1:]):
            path = child.events[this]["path"]
            if path in state:
                doc_id, pages = state[path]
                self.seconds[doc_id] = child.events[after]["t"] - child.events[this]["t"]
                self.writes[doc_id] = sum(e["e"] == "write" for e in child.events[this:after])
                per_page.setdefault(Path(path).suffix, []).append(self.seconds[doc_id] / pages)
        every = [v for values in per_page.values() for v in values] or [1.0]
        per_doc = statistics.median(self.writes.values()) if self.writes else 2
        self.rates = {suffix: statistics.median(v) for suffix, v in per_page.items()}
        self.rates[""] = statistics.median(every)
        self.writes_per_doc = round(per_doc)
        for f in self.pool:
            doc_id, pages = self.info[str(f.resolve())]
            self.seconds.setdefault(doc_id, pages * statistics.median(per_page.get(f.suffix)
                                                                      or every))
            # a commit's writes hardly grow with its pages; a staged batch is one more
            self.writes.setdefault(doc_id, round(per_doc) + pages // 8)
        start = child.last("start")["t"]
        if marks:
            first, last = child.events[marks[0]], child.events[marks[-1]]
            self.overhead = first["t"] - start + done["t"] - last["t"]
            self.create_writes = sum(e["e"] == "write" for e in child.events[:marks[0]])
        self.result["staging"] = done["report"]["staging"]
        check = self._check(state, {}, complete=True)
        checked = check.last("checked") or {"problems": [f"check failed: {check.last('error')}"]}
        if checked["problems"]:
            self.result["problems"].append({"trial": "calibration",
                                            "problems": checked["problems"]})
            self.result["inconsistent_kills"] += 1
        return {"seconds": round(done["t"] - start, 2), "pages": done["report"]["pages"],
                "files": len(marks) - 1,
                "writes": sum(e["e"] == "write" for e in child.events)}

    def _estimate(self, state: dict, stored: set[str], force: bool,
                  fresh: bool) -> tuple[float, int]:
        """Seconds and writes an uninterrupted run of this work takes (calibration)."""
        seconds, writes, seen = self.overhead, self.create_writes if fresh else 0, set()
        for path, (doc_id, pages) in state.items():
            if (force or doc_id not in stored) and doc_id not in seen:
                rate = self.rates.get(Path(path).suffix, self.rates[""])
                seconds += self.seconds.get(doc_id, pages * rate)  # edited: by its pages
                writes += self.writes.get(doc_id, self.writes_per_doc + pages // 8)
                seen.add(doc_id)
            else:
                seconds += 0.02
        return seconds, writes + 2  # relinks, removals and sync: a commit or two

    def rebuild(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        child = Child(*_fork(_child_index, str(self.home), self.backend, str(self.folder),
                             False, False))
        child.run(limit=3600)
        if child.last("done") is None:
            raise RuntimeError(f"re-indexing from scratch failed: {child.last('error')}")

    def mutate(self) -> list[str]:
        """One to three changes to the corpus folder; -> what was done.

        A file whose content was copied elsewhere in this trial keeps its content: were it
        replaced too, the content would have moved to a path indexed after the one it left,
        and the product then deletes and encodes it again by design (not a crash's cost)."""
        done: list[str] = []
        copied_from: set[Path] = set()
        for _ in range(self.rng.randint(1, 3)):
            present = sorted(self.folder.iterdir())
            kinds = ["edit", "edit", "replace", "add", "copy", "delete"]
            if len(present) <= 2:
                kinds.remove("delete")
            if len(present) >= len(self.initial) + 3:
                kinds = ["edit", "replace", "delete"]
            kind = self.rng.choice(kinds)
            pdfs = [f for f in present if f.suffix == ".pdf" and f not in copied_from]
            if kind == "edit" and pdfs:
                # a new version of the same document: bytes after %%EOF (a PDF reader
                # ignores them) give it new content, so it is encoded and replaced anew
                target = self.rng.choice(pdfs)
                self.edits += 1
                with open(target, "ab") as f:
                    f.write(b"\n%% edit %d\n" % self.edits)
                done.append(f"edit {target.name}")
            elif kind == "replace":
                targets = [f for f in present if f not in copied_from]
                target = self.rng.choice(targets) if targets else None
                sources = [f for f in [*self.pool, *present]
                           if target is not None and f.suffix == target.suffix and f != target]
                if not sources:
                    continue
                source = self.rng.choice(sources)
                _copy_over(source, target)
                copied_from.add(source)
                done.append(f"replace {target.name} by {source.name}")
            elif kind in ("add", "copy"):
                source = self.rng.choice(self.pool if kind == "add" else present)
                self.added += 1
                target = self.folder / f"added-{self.added}{source.suffix}"
                _copy_over(source, target)
                copied_from.add(source)
                done.append(f"{kind} {target.name} from {source.name}")
            else:
                target = self.rng.choice(present)
                target.unlink()
                done.append(f"delete {target.name}")
        return done

    def trial(self, number: int) -> bool:
        """One kill, check, resume, check; -> whether a kill happened."""
        res = self.result
        t0 = time.monotonic()
        before = self.state()
        roll = self.rng.random()
        force = False
        if roll < 0.15:
            kind, changes = "fresh", ["empty collection"]
            shutil.rmtree(self.home, ignore_errors=True)
            before = {}
        elif roll < 0.25:
            kind, changes, force = "force", ["--force"], True
        else:
            kind, changes = "mutate", self.mutate()
        state = self.state()
        stored = {d for d, _ in before.values()}
        estimate, writes = self._estimate(state, stored, force, kind == "fresh")
        if self.rng.random() < 0.5:  # the parent kills it, at a random moment
            kill_after, kill_at, after = self.rng.uniform(0, estimate), None, False
            how = "timed"
        else:  # it kills itself at a random write, just before or just after it
            kill_after, kill_at = None, self.rng.randint(1, max(1, writes))
            after = self.rng.random() < 0.5
            how = f"write {kill_at}/{writes} ({'after' if after else 'before'})"
        child = Child(*_fork(_child_index, str(self.home), self.backend, str(self.folder), force,
                             True, kill_at, after))
        child.run(kill_after=kill_after, limit=max(120, 10 * estimate))
        res["trials"] += 1
        if child.killed_at is None:
            res["finished_before_kill"] += 1
            if child.last("done") is None:
                res["problems"].append({"trial": number, "kind": kind, "changes": changes,
                                        "problems": [f"index failed: {child.last('error')}"]})
                res["inconsistent_kills"] += 1
            return False
        res["kills"] += 1
        res["kinds"][kind] += 1
        res["kill_phase"][child.phase_at_kill] += 1

        problems: list[str] = []
        resumed = ""
        check = self._check(state, before, complete=False, forced=force)
        after_kill = check.last("checked")
        if after_kill is None:
            problems.append(f"check after the kill failed: {check.last('error')}")
            after_kill = {"stored": [], "pending": {}}
        problems += [f"after the kill: {p}" for p in after_kill.get("problems", [])]

        resume = Child(*_fork(_child_index, str(self.home), self.backend, str(self.folder), False,
                              False))
        resume.run(limit=max(300, 20 * estimate))
        done = resume.last("done")
        if done is None:
            res["resume_failures"] += 1
            problems.append(f"resume failed: {resume.last('error') or 'killed (hung)'}")
        else:
            report = done["report"]
            if report["failed"]:
                problems.append(f"resume reported failed files: {report['failed']}")
            stored_now = set(after_kill["stored"])
            pending = after_kill["pending"]
            needed = {d for d, _ in state.values() if d not in stored_now}
            pages = {d: n for d, n in state.values()}
            minimum = sum(max(0, pages[d] - pending.get(d, 0)) for d in needed)
            res["encoded_after_resume"] += report["encoded"]
            res["minimum"] += minimum
            res["excess"] += max(0, report["encoded"] - minimum)
            resumed = f"resume encoded {report['encoded']} pages (minimum {minimum})"
            reached: dict[str, int] = {}
            for e in child.events:
                if e["e"] == "page" and e["path"] in state:
                    d = state[e["path"]][0]
                    reached[d] = max(reached.get(d, 0), int(e["n"]))
            res["lost_pages"] += sum(max(0, n - pending.get(d, 0)) for d, n in reached.items()
                                     if d in needed)
            final = self._check(state, {}, complete=True)
            checked = final.last("checked")
            if checked is None:
                problems.append(f"check after the resume failed: {final.last('error')}")
            else:
                problems += [f"after the resume: {p}" for p in checked["problems"]]
        if problems:
            res["inconsistent_kills"] += 1
            res["problems"].append({"trial": number, "kind": kind, "changes": changes,
                                    "killed_at_s": round(child.killed_at, 3), "how": how,
                                    "phase": child.phase_at_kill,
                                    "last_events": child.events[-4:], "problems": problems})
            self.rebuild()  # go on from a collection known to be whole
        res["cycle_s"].append(time.monotonic() - t0)
        self.log(f"[{self.backend}] kill {res['kills']}: {kind} {', '.join(changes)}; "
                 f"{how}: killed at {child.killed_at:.2f}/{estimate:.2f} s "
                 f"({child.phase_at_kill}); {resumed}; "
                 f"{'PROBLEMS: ' + '; '.join(problems) if problems else 'consistent'}")
        return True


def run_lane(backend: str, kills: int, workdir: Path, files: list[Path], pool: list[Path],
             phrases: dict[str, str], seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(f"{seed}-{backend}")
    random.seed(f"{seed}-{backend}-timing")
    lane = Lane(backend, workdir, files, pool, dict(phrases), rng, log)
    t0 = time.monotonic()
    calibration = lane.calibrate()
    log(f"[{backend}] calibration: {calibration}")
    trials = 0
    while lane.result["kills"] < kills and trials < 4 * kills + 10:
        trials += 1
        lane.trial(trials)
    res = lane.result
    cycles, checks = res.pop("cycle_s"), res.pop("check_s")
    res.update(calibration=calibration, seconds=round(time.monotonic() - t0, 1),
               median_cycle_s=round(statistics.median(cycles), 2) if cycles else None,
               median_check_s=round(statistics.median(checks), 2) if checks else None,
               kill_phase=dict(res["kill_phase"]), kinds=dict(res["kinds"]))
    shutil.rmtree(lane.home, ignore_errors=True)
    shutil.rmtree(lane.folder, ignore_errors=True)
    return res


def _lane_process(fd: int, *args: Any) -> None:
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    _send(fd, {"e": "lane", "result": run_lane(*args, log=log)})


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs in all, split over backends")
    ap.add_argument("--backend", default="lancedb,faiss", help="comma-separated backends")
    ap.add_argument("--corpus", choices=("full", "small"), default="full")
    ap.add_argument("--page-backend", default="auto",
                    help="text/minilm's backend option: auto (onnxruntime on a CPU), torch, onnx")
    ap.add_argument("--page-batch", type=int, default=None,
                    help="pages per encoder batch and staged batch (default: the pipeline's "
                         "8; 2 with --corpus small)")
    ap.add_argument("--lanes", type=int, default=2, help="backends run side by side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-crash-soak"))
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def main() -> int:
    args = _parse()
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RETRIEVER_CACHE_DIR", str(args.workdir / "cache"))
    t0 = time.monotonic()
    files, pool, notes = build_corpus(args.workdir / "corpus", args.corpus)
    page_batch = args.page_batch or (2 if args.corpus == "small" else None)
    preload_encoder(page_batch, args.page_backend)
    phrases = known_phrases([*files, *pool])
    setup = {"setup_s": round(time.monotonic() - t0, 1), "page_batch": page_batch,
             "page_backend": args.page_backend,
             "files": [f.name for f in files],
             "pool": [f.name for f in pool], "phrases": len(phrases), "notes": notes}
    print(f"setup: {setup}", file=sys.stderr, flush=True)
    per_backend = math.ceil(args.kills / len(backends))
    threaded = [m for m in ("lancedb", "lance", "onnxruntime", "faiss") if m in sys.modules]
    if threaded:  # their thread pools would not survive the forks
        raise SystemExit(f"the parent imported {threaded} before forking")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results: list[dict[str, Any]] = []
    if args.lanes > 1 and len(backends) > 1:
        lanes = [Child(*_fork(_lane_process, b, per_backend, args.workdir, files, pool, phrases,
                              args.seed)) for b in backends]
        for b, lane in zip(backends, lanes):
            lane.run(limit=24 * 3600)
            got = lane.last("lane")
            if got is None:
                raise SystemExit(f"the {b} lane failed: {lane.last('error')}")
            results.append(got["result"])
    else:
        results = [run_lane(b, per_backend, args.workdir, files, pool, phrases, args.seed, log)
                   for b in backends]
    total = {"backend": "total", **{k: sum(r[k] for r in results) for k in (
        "kills", "finished_before_kill", "inconsistent_kills", "resume_failures",
        "encoded_after_resume", "minimum", "excess", "lost_pages")},
        "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        print(json.dumps(setup))
        for row in [*results, total]:
            print(json.dumps(row))
    else:
        print(f"\n{'backend':9} {'kills':>5} {'early':>5} {'bad':>4} {'resume!':>7} "
              f"{'encoded':>8} {'minimum':>8} {'excess':>6} {'lost':>5} {'cycle s':>8}")
        for r in [*results, total]:
            print(f"{r['backend']:9} {r['kills']:5d} {r['finished_before_kill']:5d} "
                  f"{r['inconsistent_kills']:4d} {r['resume_failures']:7d} "
                  f"{r['encoded_after_resume']:8d} {r['minimum']:8d} {r['excess']:6d} "
                  f"{r['lost_pages']:5d} {str(r.get('median_cycle_s', '')):>8}")
        for r in results:
            print(f"\n{r['backend']}: kills landed {r['kill_phase']}; trials {r['kinds']}; "
                  f"calibration {r['calibration']}; staging detected: {r['staging']}; "
                  f"phrases dropped: {r['phrases_dropped']}")
            for p in r["problems"]:
                print(f"  PROBLEM {json.dumps(p)[:2000]}")
        print("\nbad: kills after which a check failed; early: children that finished before "
              "their kill (not counted as kills); encoded / minimum: pages the resumes "
              "encoded / the least they had to; lost: pages a killed run had reached of "
              "documents neither committed nor staged at the kill")
    return 1 if total["inconsistent_kills"] else 0


if __name__ == "__main__":
    sys.exit(main())
