"""The files an ``index`` run will encode, handed to the page producer ahead of time.

Why: workers can only rasterize and OCR ahead of the encoder if they know which files
come next, but whether a file needs encoding is decided file by file as the run commits
(a copy of a document committed a moment ago is only relinked). So a cheap pass first
predicts the files to encode (content not stored yet, first file of each content), the
producer works through them in that order, and the run takes each file's events when it
gets there. A predicted file that turns out not to need encoding has its events skipped;
a file that needs encoding but was not predicted (its twin failed) is produced on its own.
"""

from __future__ import annotations

__all__ = ["JobStream", "plan_jobs"]

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from .errors import RetrieverError
from .ingest import content_hash
from .ingest.producer import DocumentEnd, DocumentFailed, DocumentJob, PageProducer
from .staging import Staging


def plan_jobs(files: Sequence[Path], stored: Mapping[str, Sequence[str]], *, force: bool,
              staging: Staging | None) -> tuple[list[DocumentJob], dict[Path, str]]:
    """The jobs to produce, in file order, and every readable file's content hash.

    A job skips the pages staged by an earlier run (``--force`` discards them: it asks
    for everything to be encoded again). Unreadable files are left to the run, which
    reports them.
    """
    jobs: list[DocumentJob] = []
    hashes: dict[Path, str] = {}
    planned: set[str] = set()
    for path in files:
        try:
            doc_id = content_hash(path)
        except RetrieverError:
            continue
        hashes[path] = doc_id
        if doc_id in planned or (doc_id in stored and not force):
            continue
        planned.add(doc_id)
        skip: frozenset[int] = frozenset()
        if staging is not None:
            if force:
                staging.discard(doc_id)
            else:
                skip = staging.pages(doc_id)
        jobs.append(DocumentJob(path, doc_id, str(path.resolve()), skip))
    return jobs, hashes


class JobStream:
    """Events of the planned jobs, taken one job at a time in plan order."""

    def __init__(self, producer: PageProducer, jobs: Sequence[DocumentJob],
                 solo: Callable[[DocumentJob], PageProducer]) -> None:
        self._events = producer.run(iter(jobs))
        self._pending = list(jobs)
        self._solo = solo
        self._open: DocumentJob | None = None  # taken, its end not read yet

    def _drain(self, job: DocumentJob) -> None:
        for event in self._events:
            if isinstance(event, (DocumentEnd, DocumentFailed)) and event.job is job:
                break
        self._open = None

    def _job_events(self, job: DocumentJob) -> Iterator:
        self._open = job
        for event in self._events:
            if isinstance(event, (DocumentEnd, DocumentFailed)) and event.job is job:
                self._open = None
                yield event
                return
            yield event

    def take(self, job: DocumentJob) -> Iterator:
        """``job``'s events: from the shared stream when it was planned (skipping the jobs
        planned before it that the run did not take), else from a producer of its own."""
        if self._open is not None:  # the last job stopped early (an error while encoding)
            self._drain(self._open)
        if job not in self._pending:
            return self._solo_events(job)
        while self._pending:
            head = self._pending.pop(0)
            if head is job:
                return self._job_events(job)
            self._drain(head)
        raise AssertionError("unreachable: the job was pending")

    def _solo_events(self, job: DocumentJob) -> Iterator:
        with self._solo(job) as producer:
            yield from producer.run([job])

    def planned(self, path: Path) -> DocumentJob | None:
        return next((j for j in self._pending if j.path == path), None)
