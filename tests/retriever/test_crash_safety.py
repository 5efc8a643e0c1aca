"""Committed data is never lost or corrupted by a crash (issue 9), through the real parts.

Real processes are killed (SIGKILL at random moments and at a write of a commit, SIGINT),
a disk write fails inside ``Retriever.index``, and two writers meet; after each, the
collection is checked as a user would find it (``tests/consistency.py``: it opens, every
document is whole and current or, for a file the run had not reached, its previous
version, nothing is stored twice or lost, search returns whole documents only), then the
run is resumed and checked again. Real LanceDB, FAISS, poppler and the real MiniLM
encoder; the indexer-level write failures (each write of a FAISS commit, a LanceDB
merge-insert failing midway) are in ``tests/indexers``, Ctrl-C at chosen moments of the CLI
in ``tests/cli/test_cli_interrupt.py``.

The in-process tests share one MiniLM encoder whose page vectors are computed once per page
and reused (the model is real; a failed run's second try need not pay for it again).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from consistency import (
    check_collection,
    corpus_state,
    fingerprint,
    instrument_writes,
    pending_pages,
)
from repo_paths import REPO, SAMPLES
from retriever import Retriever, errors, plugin_host
from retriever.ingest import content_hash

pytestmark = pytest.mark.slow

BACKENDS = ["lancedb", "faiss"]
MIME = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")


# -- shared pieces ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory) -> Path:
    """Nine real pages (two page batches of the pipeline), cut from a PDF Debian ships."""
    if not MIME.exists():
        pytest.skip(f"{MIME} not installed (apt-get install shared-mime-info)")
    folder = tmp_path_factory.mktemp("long")
    subprocess.run(["pdfseparate", "-f", "1", "-l", "9", str(MIME), str(folder / "p-%d.pdf")],
                   check=True, capture_output=True)
    out = folder / "mime-1-9.pdf"
    subprocess.run(["pdfunite", *(str(folder / f"p-{n}.pdf") for n in range(1, 10)), str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="module")
def _minilm():
    """text/minilm, made once; page vectors computed once per page and kept."""
    encoder = plugin_host.get_registry().create("encoder", "text/minilm", query_backend="torch")
    encode, seen = encoder.encode_pages, {}

    def encode_pages(pages):
        missing = [p for p in pages if p.key not in seen]
        if missing:
            seen.update(zip([p.key for p in missing], encode(missing)))
        return [seen[p.key] for p in pages]

    encoder.encode_pages = encode_pages
    return encoder


@pytest.fixture
def minilm(_minilm, monkeypatch):
    """Every ``Retriever`` of the test gets the shared encoder."""
    create = plugin_host.Registry.create

    def create_shared(self, kind, name, **options):
        if kind == "encoder" and name == "text/minilm":
            return _minilm
        return create(self, kind, name, **options)

    monkeypatch.setattr(plugin_host.Registry, "create", create_shared)
    return _minilm


def _index(home: Path, backend: str, paths, **kwargs):
    with Retriever("c", data_dir=home, indexer=backend) as r:
        return r.index([str(p) for p in paths], **kwargs)


def _corpus(folder: Path, files: dict[str, Path]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        shutil.copyfile(src, folder / name)
    return sorted(folder / name for name in files)


def _problems(problems: list[str]) -> str:
    return "\n  ".join(["the collection is inconsistent:", *problems])


# -- the check itself finds what a crash could leave ----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_check_names_each_kind_of_damage(backend, tmp_path, minilm):
    """A check that passes everything proves nothing: damage made by hand is named."""
    docs = _corpus(tmp_path / "docs", {"a.pdf": SAMPLES / "annual-report.pdf",
                                       "b.pdf": SAMPLES / "invoice.pdf"})
    home = tmp_path / "home"
    assert _index(home, backend, [tmp_path / "docs"]).failed == []
    state = corpus_state(docs)
    phrase = {"proposes a dividend of EUR 0.85 per share": state[str(docs[0])][0]}
    assert check_collection(home, "c", state, phrases=phrase) == []
    a, b = (state[str(p)][0] for p in docs)

    with Retriever("c", data_dir=home) as r:
        ix = r.indexer
        pages = ix.get([f"{a}:1", f"{a}:2", f"{a}:3"])
        # half a document: page 2 of a.pdf gone (what a torn commit would leave)
        ix.delete([a])
        ix.add([pages[0], pages[2]])
    problems = check_collection(home, "c", state, phrases=phrase)
    assert any(f"document {a}" in p and "half-indexed" in p and "[2]" in p for p in problems), \
        problems
    assert any(f"returned page 1 of {a}, which is not a whole stored document" in p
               for p in problems), problems  # the phrase is on page 1
    assert check_collection(home, "c", state, before=state, complete=False, search=False)

    with Retriever("c", data_dir=home) as r:
        r.indexer.add([pages[1]])  # whole again
        # both versions: a second document claims b.pdf's path
        twin = [dataclasses.replace(p, doc_id="0" * 20, paths=(str(docs[1]),))
                for p in r.indexer.get([f"{b}:1"])]
        r.indexer.add(twin)
    problems = check_collection(home, "c", state, search=False)
    assert any(f"{docs[1]} is stored twice" in p for p in problems), problems
    assert any("0" * 20 in p and "content of no corpus file" in p for p in problems), problems
    with Retriever("c", data_dir=home) as r:
        r.indexer.delete(["0" * 20])
    assert check_collection(home, "c", state, search=False) == []

    # a stale version: a.pdf changed and the collection still holds its old content
    shutil.copyfile(SAMPLES / "slide.pdf", docs[0])
    now = corpus_state(docs)
    problems = check_collection(home, "c", now, search=False)
    assert any(f"{docs[0]} is not stored at its current content" in p for p in problems), \
        problems
    # ... which is allowed after a run killed before it reached a.pdf, and not otherwise
    assert check_collection(home, "c", now, before=state, complete=False, search=False) == []
    assert check_collection(home, "c", now, before={}, complete=False, search=False)


# -- SIGKILL at random moments, then resume ---------------------------------------------------


def test_sigkill_at_random_moments_then_resume(tmp_path):
    """The soak's fork harness, small: on each backend, ``Retriever.index`` SIGKILLed at a
    random moment (by the parent) or at a random write of a commit (by itself), over a
    corpus that changes between kills (edit, replace, add, copy, delete; a fresh collection;
    --force), each kill followed by the check, a resume and the check of a complete run."""
    seed = random.randrange(1 << 30)
    cmd = [sys.executable, str(REPO / "benchmarks" / "crash_soak.py"), "--corpus", "small",
           "--kills", "4", "--seed", str(seed), "--json", "--workdir", str(tmp_path)]
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the soak hung (seed {seed}): {(exc.stderr or b'')[-3000:]!r}")
    rerun = f"rerun: python benchmarks/crash_soak.py --corpus small --kills 4 --seed {seed}"
    assert out.returncode in (0, 1), f"{rerun}\n{out.stderr[-4000:]}"
    rows = {r["backend"]: r for r in map(json.loads, out.stdout.splitlines()[1:])}
    assert set(rows) == {"lancedb", "faiss", "total"}, out.stdout
    for backend in BACKENDS:
        row = rows[backend]
        assert row["kills"] >= 2, (rerun, row)
        assert row["inconsistent_kills"] == 0 and row["resume_failures"] == 0, \
            f"{rerun}\n" + json.dumps(row["problems"], indent=1)[:8000]
        # a resume encodes exactly the pages that were neither committed nor staged
        assert row["encoded_after_resume"] == row["minimum"], (rerun, row)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kill_while_the_collection_is_created_does_not_block_the_next_run(
        backend, tmp_path, minilm):
    """SIGKILL at the collection's very first write, in a real process."""
    home = tmp_path / "home"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        from consistency import instrument_writes
        instrument_writes(lambda kind, detail: os.kill(os.getpid(), signal.SIGKILL))
        from retriever import Retriever
        Retriever("c", data_dir={str(home)!r}, indexer={backend!r}, ocr=None).index(
            [{str(SAMPLES / "invoice.pdf")!r}])
    """)
    died = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          timeout=120)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-3000:]
    assert (home / "collections" / "c").exists()  # it died halfway through creating it
    assert check_collection(home, "c", [], before={}, complete=False) == []
    report = _index(home, backend, [SAMPLES / "invoice.pdf"])
    assert report.failed == []
    assert check_collection(home, "c", [SAMPLES / "invoice.pdf"]) == []


# -- a disk write that fails --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_disk_write_leaves_the_collection_as_it_was(backend, tmp_path, minilm,
                                                              long_pdf):
    """A changed file's commit (its 9-page new version and the removal of the old one),
    with an OSError ("no space left on device") at each of its writes in turn: the file is
    reported failed, the collection reads exactly as before, and the next run succeeds."""
    docs = _corpus(tmp_path / "docs", {"a.pdf": SAMPLES / "annual-report.pdf",
                                       "b.pdf": SAMPLES / "invoice.pdf"})
    base = tmp_path / "base"
    assert _index(base, backend, docs).failed == []
    before_state, before = corpus_state(docs), fingerprint(base, "c")
    shutil.copyfile(long_pdf, docs[0])  # a.pdf changes: the commit under test
    now = corpus_state(docs)

    def run(home: Path, fail_at: int | None = None) -> tuple[list, object]:
        shutil.copytree(base, home)
        writes: list[str] = []

        def write(kind: str, detail: str) -> None:
            writes.append(f"{kind} {detail}".strip())
            if len(writes) == fail_at:
                raise OSError(28, "No space left on device (injected)")

        undo = instrument_writes(write)
        try:
            report = _index(home, backend, docs)
        finally:
            undo()
        return writes, report

    writes, report = run(tmp_path / "dry")
    assert report.failed == [] and report.replaced == [str(docs[0])], report
    after = fingerprint(tmp_path / "dry", "c")
    assert len(writes) >= 2, writes
    for k, what in enumerate(writes, start=1):
        home = tmp_path / f"fail-{k}"
        _, report = run(home, fail_at=k)
        label = f"write {k} of {len(writes)} ({what}; all: {writes})"
        got = fingerprint(home, "c")
        if got == after:  # past the commit point (a derived index): committed, and said so
            assert report.failed == [], f"{label}: committed, yet reported {report.failed}"
        else:
            assert got == before, f"{label}: the failed commit changed the collection"
            assert [(f.path, f.reason) for f in report.failed] == [(str(docs[0]), "error")], \
                f"{label}: {report.failed}"
            assert "No space left on device" in report.failed[0].detail
        problems = check_collection(home, "c", now, before=before_state, complete=False,
                                    search=False)
        assert problems == [], f"{label}: " + _problems(problems)
        again = _index(home, backend, docs)  # the disk has room again
        assert again.failed == [], f"{label}: {again.failed}"
        assert fingerprint(home, "c") == after, f"{label}: the next run left another state"
        problems = check_collection(home, "c", now, search=k == 1)
        assert problems == [], f"{label}: " + _problems(problems)
        shutil.rmtree(home)


def test_a_failing_full_text_build_after_a_commit_does_not_report_the_file_failed(
        tmp_path, minilm):
    """LanceDB builds its full-text index after a commit; a full disk there must not turn a
    committed file into a failed one (the report says exactly what was committed)."""
    from indexers.lancedb.fulltext import FullText

    real = FullText.refresh

    def full_disk(self, table, **kwargs):
        raise OSError(28, "No space left on device (injected)")

    FullText.refresh = full_disk  # the first commit of a collection builds the index
    try:
        report = _index(tmp_path / "home", "lancedb", [SAMPLES / "invoice.pdf"])
    finally:
        FullText.refresh = real
    with Retriever("c", data_dir=tmp_path / "home") as r:
        stored = set(r.documents())
    committed = content_hash(SAMPLES / "invoice.pdf") in stored
    assert committed  # the pages are there: the failure came after the commit point
    assert report.failed == [], f"committed, yet reported failed: {report.failed}"
    assert check_collection(tmp_path / "home", "c", [SAMPLES / "invoice.pdf"]) == []


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_staged_pages_of_a_file_that_changed_before_the_resume_do_not_stay(
        change, tmp_path, minilm, long_pdf):
    """Ctrl-C after a document's first staged batch, then the file changes or goes: the
    next complete run leaves no staged batch behind and nothing pending."""
    docs = _corpus(tmp_path / "docs", {"a.pdf": long_pdf, "b.pdf": SAMPLES / "invoice.pdf"})
    home = tmp_path / "home"

    def ctrl_c_after_the_first_staged_batch(kind: str, detail: str) -> None:
        if detail.startswith("p0"):  # staging.py names a batch after its first page
            raise KeyboardInterrupt

    undo = instrument_writes(after=ctrl_c_after_the_first_staged_batch)
    try:
        with pytest.raises(KeyboardInterrupt):
            _index(home, "lancedb", [tmp_path / "docs"])
    finally:
        undo()
    with Retriever("c", data_dir=home) as r:
        assert pending_pages(r) == {content_hash(docs[0]): 8}  # one batch, kept to resume
    if change == "replaced":
        shutil.copyfile(SAMPLES / "slide.pdf", docs[0])
    else:
        docs[0].unlink()
    left = [p for p in docs if p.exists()]
    assert _index(home, "lancedb", [tmp_path / "docs"], sync=True).failed == []
    with Retriever("c", data_dir=home) as r:
        staged = pending_pages(r)
    batches = sorted(p.name for p in home.rglob("p0*.npz"))
    problems = check_collection(home, "c", left, search=False)
    assert staged == {} and batches == [], (staged, batches, problems)
    assert problems == [], _problems(problems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_during_a_commit_leaves_no_committed_document_pending(backend, tmp_path, minilm,
                                                                     long_pdf):
    """A SIGINT that lands inside a staged document's commit waits for the commit; the
    document is then searchable, and ``pending()`` must not call it staged."""
    docs = _corpus(tmp_path / "docs", {"a.pdf": long_pdf})
    home = tmp_path / "home"
    fired = []

    def ctrl_c_inside_the_commit(kind: str, detail: str) -> None:
        if not fired and (kind == "batch" or detail.startswith("seg-")):
            fired.append(detail)
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, held by the commit

    undo = instrument_writes(ctrl_c_inside_the_commit)
    try:
        with pytest.raises(KeyboardInterrupt):
            _index(home, backend, docs)
    finally:
        undo()
    assert fired, "no write of a commit was seen"
    with Retriever("c", data_dir=home) as r:
        stored = set(r.documents())
    assert stored == {content_hash(docs[0])}  # the commit finished: Ctrl-C waits for it
    problems = check_collection(home, "c", docs, before={}, complete=False)
    assert problems == [], _problems(problems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kill_between_a_commit_and_its_discard_leaves_nothing_pending(backend, tmp_path):
    """SIGKILL in a real process just after the commit point of a staged document."""
    home, doc = tmp_path / "home", SAMPLES / "annual-report.pdf"
    kill_before, kill_after = ("fts", "") if backend == "lancedb" else ("", "CURRENT")
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        from consistency import instrument_writes
        def die(at):
            return lambda kind, detail: at and at in (kind, detail) and \
                os.kill(os.getpid(), signal.SIGKILL)
        from retriever import Retriever
        r = Retriever("c", data_dir={str(home)!r}, indexer={backend!r}, ocr=None)
        r.index([{str(SAMPLES / "invoice.pdf")!r}])  # first, uninterrupted
        instrument_writes(die({kill_before!r}), die({kill_after!r}))
        r.index([{str(doc)!r}])  # killed just after its commit point
    """)
    died = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          timeout=180)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-3000:]
    with Retriever("c", data_dir=home) as r:
        assert content_hash(doc) in r.documents()  # killed after the commit point
    problems = check_collection(home, "c", [SAMPLES / "invoice.pdf", doc], before={},
                                complete=False, search=False)
    assert problems == [], _problems(problems)


# -- Ctrl-C through a real process ------------------------------------------------------------


def test_ctrl_c_at_a_random_moment_of_a_faiss_index_keeps_what_was_committed(
        tmp_path, minilm, long_pdf):
    """SIGINT to ``retriever index --indexer faiss`` (real MiniLM) at a random moment after
    its first commit: exit 130, the report names exactly what is stored, the collection
    is consistent, and the resume adds the rest. (The CLI's Ctrl-C at chosen moments, on
    LanceDB with a test encoder, is ``tests/cli/test_cli_interrupt.py``.)"""
    docs = _corpus(tmp_path / "docs", {"1-invoice.pdf": SAMPLES / "invoice.pdf",
                                       "2-mime.pdf": long_pdf,
                                       "3-annual-report.pdf": SAMPLES / "annual-report.pdf"})
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_HOME": str(home),
           "RETRIEVER_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "index", str(tmp_path / "docs"),
                             "--indexer", "faiss", "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        current = home / "collections" / "default" / "faiss" / "CURRENT"
        while proc.poll() is None:  # the first document's commit: generation 1
            if current.exists() and current.read_text().strip() != "gen-00000000.json":
                break
            time.sleep(0.05)
        delay = random.uniform(0, 2.0)  # mostly while the 9-page document is encoded
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        watchdog.cancel()
    err_text = err.decode()
    if proc.returncode == 0:
        pytest.skip(f"the run finished before the SIGINT ({delay:.2f} s after its first "
                    "commit); nothing to check this time")
    assert proc.returncode == 130, err_text[-3000:]
    assert "Traceback" not in err_text and "committed in this run" in err_text, err_text[-3000:]
    report = json.loads(out)
    assert report["interrupted"] and report["indexed"], report
    committed = [Path(p) for p in report["indexed"]]
    with Retriever("default", data_dir=home) as r:
        stored = set(r.documents())
    assert stored == {content_hash(p) for p in committed}, \
        f"the report says {report['indexed']} were committed; the collection holds {stored}"
    problems = check_collection(home, "default", docs, before={}, complete=False)
    assert problems == [], _problems(problems)
    with Retriever("default", data_dir=home) as r:
        # pages of the unfinished document, kept for the resume
        staged = {d: n for d, n in pending_pages(r).items() if d not in stored}
        again = r.index([str(tmp_path / "docs")])
    assert again.failed == [] and again.unchanged == report["indexed"], again
    needed = sum(n for d, n in corpus_state(docs).values() if d not in stored)
    encoded = getattr(again, "encoded_pages", again.pages)
    assert encoded == needed - sum(staged.values()), (encoded, needed, staged)
    assert getattr(again, "reused_pages", 0) == sum(staged.values()), (again, staged)
    problems = check_collection(home, "default", docs,
                                phrases={"proposes a dividend of EUR 0.85 per share":
                                         content_hash(docs[2])})
    assert problems == [], _problems(problems)


# -- two writers at once --------------------------------------------------------------------------


@pytest.mark.xfail(not hasattr(errors, "CollectionBusyError"), strict=False,
                   reason="the collection writer lock (CollectionBusyError, exit 8) is not "
                          "in the tree yet")
def test_a_second_writer_is_refused_while_the_first_commits(tmp_path):
    """Writer 1 pauses inside its first commit (test plugin: slow-lancedb); writer 2 on
    the same collection exits 8 naming it busy; writer 1 then finishes, the collection
    holds exactly its files, and writer 2's retry adds its own."""
    from cli_subprocess import cli, plugin_env, run_cli
    from indexers.lancedb.indexer import LanceDBIndexer

    first_docs = _corpus(tmp_path / "one", {"1-invoice.pdf": SAMPLES / "invoice.pdf",
                                            "2-slide.pdf": SAMPLES / "slide.pdf"})
    second_docs = _corpus(tmp_path / "two", {"report.pdf": SAMPLES / "annual-report.pdf"})
    common = ["-e", "slow/hashing", "--indexer", "slow-lancedb", "--no-ocr", "--json"]
    env = plugin_env(tmp_path)
    first = subprocess.Popen(cli("index", str(tmp_path / "one"), *common), cwd=REPO,
                             env={**env, "RETRIEVER_TEST_PAUSE": "commit:1",
                                  "RETRIEVER_TEST_PAUSE_S": "5"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(180, first.kill)
    watchdog.start()
    try:
        seen = []
        for line in first.stderr:
            seen.append(line)
            if line.startswith(b"PAUSE commit:1"):
                break
        assert b"PAUSE commit:1" in b"".join(seen), b"".join(seen).decode()[-3000:]
        second = run_cli(env, "index", str(tmp_path / "two"), *common)
        out, err = first.communicate(timeout=180)
    finally:
        watchdog.cancel()
    assert second.returncode == 8, (second.returncode, second.stderr.decode()[-3000:])
    assert "collection 'default' is being indexed by pid" in second.stderr.decode(), \
        second.stderr.decode()[-3000:]
    assert first.returncode == 0, err.decode()[-3000:]

    def stored() -> dict[str, int]:
        ix = LanceDBIndexer(tmp_path / "home" / "collections" / "default" / "slow-lancedb")
        try:
            docs, pages = ix.documents(), ix.count()
        finally:
            ix.close()
        return {"documents": sorted(docs), "pages": pages}

    assert stored() == {"documents": sorted(content_hash(p) for p in first_docs), "pages": 2}
    retry = run_cli(env, "index", str(tmp_path / "two"), *common)
    assert retry.returncode == 0, retry.stderr.decode()[-3000:]
    assert stored() == {"documents": sorted(content_hash(p) for p in first_docs + second_docs),
                        "pages": 5}
