"""What ``Retriever.index`` and ``Retriever.delete`` do to a collection, file by file.

A document is identified by the hash of its content and recorded at every path it was
found at (a copied file has several, a moved one gets its new path). Each file becomes at
most one commit, ``Indexer.replace``: its new version, the removal of the version it
replaces and any path changes land together, so a crash leaves one version or the other.
Content already stored under another path is never encoded again. While a document is
encoded, its page batches wait in the collection's staging area (``staging.py``), out of
search's sight; a run that was killed resumes with the pages not staged yet.

Bookkeeping keeps one invariant: a path belongs to at most one document.
"""

from __future__ import annotations

__all__ = ["IndexReport", "DeleteReport", "ProgressCallback", "index_files",
           "record_outcome", "sync_roots", "delete_targets", "stored_paths", "staging_for",
           "pending_documents"]

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bookkeeping import Book, FilePlan, file_exists, plan_file, stored_paths
from .errors import BadInputError, MissingDependencyError, RetrieverError
from .filenames import is_under
from .ingest import content_hash
from .ingest.producer import DocumentJob, PageProducer, default_workers
from .interrupts import deferred_interrupt
from .jobstream import JobStream, plan_jobs
from .pipeline import Compress, encode_document, no_text_error, producer_for
from .protocols import Encoder, Indexer, OCREngine
from .staging import STAGING_DIR, StagedDocument, Staging
from .types import FileFailure, PageRecord

log = logging.getLogger(__name__)

#: progress(stage, done, total, detail); stage is "files" or "pages"
ProgressCallback = Callable[[str, int, int, str], None]


@dataclass
class IndexReport:
    """What one ``index`` run did; ``failed`` lists each bad file with its reason.

    ``indexed``: files encoded and committed, in order; ``replaced``: files whose content
    changed (their old version is gone); ``moved`` / ``copied``: files whose content was
    already stored under another path, recorded at this path without encoding (moved: an
    old path no longer exists); ``removed``: recorded paths that ``sync`` dropped because
    the file is gone; ``interrupted``: the run stopped on Ctrl-C. ``pages``: pages
    committed; ``encoded_pages``: pages encoded by this run (committed or staged);
    ``reused_pages``: pages an interrupted run had staged, committed without encoding
    them again; ``staged``: files whose staged pages wait for the next run (interrupted).
    """

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    pages: int = 0
    moved: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    interrupted: bool = False
    encoded_pages: int = 0
    reused_pages: int = 0
    staged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed, "unchanged": self.unchanged, "replaced": self.replaced,
            "moved": self.moved, "copied": self.copied, "removed": self.removed,
            "failed": [{"path": f.path, "reason": f.reason, "detail": f.detail}
                       for f in self.failed],
            "pages": self.pages, "encoded_pages": self.encoded_pages,
            "reused_pages": self.reused_pages, "staged": self.staged,
            "interrupted": self.interrupted,
        }


@dataclass
class DeleteReport:
    """What ``delete`` removed: whole ``documents`` (ids), the ``paths`` it forgot, the
    ``pages`` that went, and the arguments that matched nothing."""

    documents: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    pages: int = 0
    unmatched: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.documents or self.paths)

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "paths": self.paths, "pages": self.pages,
                "unmatched": self.unmatched}


@dataclass
class _Run:
    """What every file of one ``index_files`` run shares."""

    indexer: Indexer
    book: Book
    encoder: Encoder
    report: IndexReport
    staging: Staging | None
    stream: JobStream
    hashes: dict[Path, str]
    force: bool
    progress: ProgressCallback | None
    compress: Compress | None = None


def staging_for(indexer: Indexer) -> Staging | None:
    """The staging area of a collection: the indexer's ``staging_dir`` (a local directory,
    also for a collection on object storage), else ``staging/`` in its directory; None
    for an indexer without one, whose documents are then committed from memory."""
    where = getattr(indexer, "staging_dir", None)  # local even when the table is not
    if where is not None:
        return Staging(Path(where))
    path = getattr(indexer, "path", None)
    return Staging(Path(path) / STAGING_DIR) if path is not None else None


def pending_documents(indexer: Indexer) -> dict[str, int]:
    """``doc_id -> pages staged`` of documents an interrupted run left half-encoded."""
    staging = staging_for(indexer)
    if staging is None:
        return {}
    committed = stored_paths(indexer)  # killed after a commit, before its discard
    return {doc_id: len(staging.pages(doc_id)) for doc_id in staging.documents()
            if doc_id not in committed}


def _tidy_staging(staging: Staging, book: Book, force: bool) -> None:
    """Drop staged pages that no run will finish: of a document committed since (killed
    between its commit and the discard), or of a file that changed or went since."""
    staging.clear_debris()
    for doc_id in staging.documents():
        if doc_id in book.paths:
            if not force:
                staging.discard(doc_id)
            continue
        source = staging.source(doc_id)
        try:
            current = content_hash(Path(source)) if source else None
        except RetrieverError:  # gone or unreadable: nothing to resume from
            current = None
        if current != doc_id:
            staging.discard(doc_id)


def index_files(indexer: Indexer, files: Sequence[Path], encoder: Encoder,
                ocr: OCREngine | None, report: IndexReport, *, max_pixels: int,
                force: bool = False, progress: ProgressCallback | None = None,
                workers: int | None = None, compress: Compress | None = None) -> None:
    """Index ``files`` into ``indexer``, adding to ``report`` as each file commits.

    Pages are produced by ``workers`` processes (default: one per core; 0: in this
    process) ahead of the encoder; each encoded batch is staged, and a document is
    committed once all of its pages are. A bad file is one ``failed`` entry and the batch
    goes on, and so is a file that hits an unexpected error (a bug in a plugin must not
    cost the whole run); a missing system dependency and Ctrl-C stop the run, keeping
    what was staged for the next run. ``compress``: the collection's compressor, applied
    to each encoded batch before it is staged (``pipeline.encode_document``).
    """
    book = Book(stored_paths(indexer))
    staging = staging_for(indexer)
    if staging is not None:
        _tidy_staging(staging, book, force)
    jobs, hashes = plan_jobs(files, book.paths, force=force, staging=staging)
    workers = default_workers() if workers is None else workers

    def solo(job: DocumentJob) -> PageProducer:
        return producer_for(encoder, ocr, max_pixels=max_pixels, workers=0)

    with producer_for(encoder, ocr, max_pixels=max_pixels,
                      workers=min(workers, max(len(jobs), 0))) as producer:
        run = _Run(indexer, book, encoder, report, staging, JobStream(producer, jobs, solo),
                   hashes, force, progress, compress)
        for done, path in enumerate(files):
            if progress:
                progress("files", done, len(files), str(path))
            source = str(path.resolve())
            try:
                _index_one(run, path, source)
            except MissingDependencyError:
                raise
            except BadInputError as exc:
                report.failed.append(FileFailure(exc.path, exc.reason, exc.detail))
            except RetrieverError as exc:
                report.failed.append(FileFailure(source, "error", exc.message))
            except Exception as exc:  # noqa: BLE001 - one file's bug must not end the batch
                log.debug("indexing %r failed", source, exc_info=True)
                report.failed.append(FileFailure(source, "error",
                                                 f"{type(exc).__name__}: {exc}"))
    if progress:
        progress("files", len(files), len(files), "")


def record_outcome(report: IndexReport, plan: FilePlan, pages: int) -> None:
    """Add a committed file to the report."""
    getattr(report, plan.outcome).append(plan.source)
    if plan.replaced:
        report.replaced.append(plan.source)
    report.pages += pages


def _index_one(run: _Run, path: Path, source: str) -> None:
    doc_id = run.hashes.get(path) or content_hash(path)  # unreadable: raises, reported
    plan = plan_file(run.book, doc_id, source, force=run.force)
    if plan.outcome == "unchanged":
        run.report.unchanged.append(source)
        return
    records: list[PageRecord] = []
    staged: list[StagedDocument] = []
    pages = _encode(run, path, doc_id, source, records, staged) if plan.encode else 0
    with deferred_interrupt():  # the report must say exactly what was committed
        run.book.commit(run.indexer, records, plan.delete, plan.paths, staged)
        record_outcome(run.report, plan, pages)
        if staged and run.staging is not None:  # a kill before this: the next run does it
            run.staging.discard(doc_id)


def _encode(run: _Run, path: Path, doc_id: str, source: str, records: list[PageRecord],
            staged: list[StagedDocument]) -> int:
    """Encode ``path``'s pages not staged yet, staging each batch (or keeping them in
    ``records`` when the collection has no staging area); -> its page count."""
    job = run.stream.planned(path) or DocumentJob(
        path, doc_id, source, run.staging.pages(doc_id) if run.staging else frozenset())
    staging, progress = run.staging, run.progress
    encoded: set[int] = set()

    def sink(batch: list[PageRecord]) -> None:
        if staging is None:
            records.extend(batch)
        else:
            staging.add(batch)
        encoded.update(r.page_number for r in batch)
        run.report.encoded_pages += len(batch)

    on_page = ((lambda page: progress("pages", page.page_number, 0, source))
               if progress else None)
    try:
        outcome = encode_document(job, run.stream.take(job), run.encoder, sink, on_page,
                                  compress=run.compress)
    except KeyboardInterrupt:
        if staging is not None and staging.pages(doc_id):
            run.report.staged.append(source)
        raise
    except BaseException:
        if staging is not None:
            staging.discard(doc_id)  # a bad file stays bad: nothing to resume
        raise
    has_text = outcome.any_regions or (staging is not None and bool(job.skip)
                                       and staging.has_text(doc_id))
    if getattr(run.encoder, "needs_regions", False) and not has_text:
        if staging is not None:
            staging.discard(doc_id)
        raise no_text_error(path, run.encoder)
    if staging is not None:  # what it holds now is known: no need to read it back
        staged.append(StagedDocument(staging, doc_id, job.skip | encoded))
        run.report.reused_pages += len(job.skip)
    return outcome.page_count


def sync_roots(indexer: Indexer, roots: Sequence[str | Path], report: IndexReport) -> None:
    """Forget recorded paths under ``roots`` whose file is gone; a document left with no
    path is deleted. Paths outside the roots are not looked at. One commit."""
    resolved = [str(Path(r).resolve()) for r in roots]
    book = Book(stored_paths(indexer))
    delete: list[str] = []
    paths: dict[str, list[str]] = {}
    gone_paths: list[str] = []
    for doc_id, doc_paths in book.paths.items():
        gone = [p for p in doc_paths if is_under(p, resolved) and not file_exists(p)]
        if not gone:
            continue
        gone_paths.extend(gone)
        rest = [p for p in doc_paths if p not in gone]
        if rest:
            paths[doc_id] = rest
        else:
            delete.append(doc_id)
    if gone_paths:
        with deferred_interrupt():
            book.commit(indexer, [], delete, paths)
            report.removed.extend(sorted(gone_paths))


def delete_targets(indexer: Indexer, targets: Sequence[str | Path]) -> DeleteReport:
    """Remove documents by doc id, or paths (a file as indexed, or every file under a
    directory); a document keeps its other paths and goes with its last one. One commit."""
    report = DeleteReport()
    book = Book(stored_paths(indexer))
    forget: dict[str, set[str]] = {}
    whole: list[str] = []
    for target in map(str, targets):
        if target in book.paths:
            whole.append(target)
            continue
        where = str(Path(target).resolve())
        hits = [(p, d) for p, d in book.owner.items() if is_under(p, [where])]
        if not hits:
            report.unmatched.append(target)
        for p, d in hits:
            forget.setdefault(d, set()).add(p)
    delete = list(dict.fromkeys(whole))
    paths: dict[str, list[str]] = {}
    for doc_id, gone in forget.items():
        if doc_id in delete:
            continue
        rest = [p for p in book.paths[doc_id] if p not in gone]
        if rest:
            paths[doc_id] = rest
        else:
            delete.append(doc_id)
    report.paths = sorted({p for d in delete for p in book.paths[d]}
                          | {p for d in paths for p in forget[d]})
    report.documents = delete
    if delete or paths:
        with deferred_interrupt():
            report.pages = book.commit(indexer, [], delete, paths)
    return report
