"""Which page task runs next, and which event is due: the producer's bookkeeping.

No processes here, only state: documents in job order, each with the tasks submitted for
it (``_Slot``: pages received, done, failed) and the ranges still to submit. Two rules
keep it correct:

* **Order.** Events are taken from the first document only, from its first task only, so
  they come in job order and page order whatever order workers finish in.
* **A page budget, spent in job order.** Every submitted task reserves its pages until
  they are handed over or dropped, and ``reserved`` never exceeds ``window``. Tasks are
  offered in document order and a later document never jumps ahead of an earlier one
  that is waiting for room. That cannot deadlock: a document's further ranges become
  known (when its first task has opened it) in the same step that shrinks its first
  task's reservation from ``range_pages`` to its real first range, so read-ahead taken
  while it was opening left room for a range of ``range_pages``, and nothing after it
  gets more room until its ranges are all submitted. (A randomized test drives the
  schedule through adversarial message orders to check this.)
"""

from __future__ import annotations

__all__ = ["Schedule"]

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import MissingDependencyError, RetrieverError
from ..types import Page
from .document import Document
from .events import DocumentEnd, DocumentFailed, Event, PageReady, WorkerCrashedError
from .pagework import DocumentJob, RangeTask, from_wire, split_ranges
from .workerpool import CRASHED

Task = tuple[Any, ...]


@dataclass(eq=False)
class _Doc:
    job: DocumentJob
    document: Document | None = None  # known once its first task has opened it
    started: bool = False  # first task submitted
    failed: bool = False
    pending: deque[RangeTask] = field(default_factory=deque)  # ranges not yet submitted
    slots: deque[_Slot] = field(default_factory=deque)  # submitted tasks, in page order

    @property
    def fully_submitted(self) -> bool:
        return self.started and not self.pending and (self.document is not None or
                                                      self.failed)


@dataclass(eq=False)
class _Slot:
    task_id: int
    doc: _Doc
    reserved: int  # pages not yet handed over or dropped (buffered ones included)
    label: str  # what the task does, for a crash message: "reading pages 5-8"
    pages: deque[Page] = field(default_factory=deque)
    done: bool = False
    error: Exception | None = None
    discarded: bool = False  # its document failed: whatever still comes is dropped


class Schedule:
    """Ordered, bounded bookkeeping of page tasks for ``PageProducer``."""

    def __init__(self, window: int, range_pages: int) -> None:
        self.window, self.range_pages = window, range_pages
        self.reserved = 0
        self._docs: deque[_Doc] = deque()
        self._slots: dict[int, _Slot] = {}  # task id -> slot, until the task is done
        self._next_id = 0
        # jobs read ahead at most: a document that failed on opening holds no pages, so
        # the page budget alone would not bound them
        self._max_docs = 2 * window

    # -- documents and tasks ---------------------------------------------------------

    def add(self, job: DocumentJob) -> None:
        self._docs.append(_Doc(job))

    def empty(self) -> bool:
        return not self._docs

    def _cost(self, doc: _Doc) -> int | None:
        """Pages the document's next task would reserve; None when it has none to run."""
        if doc.failed:
            return None
        if not doc.started:
            return self.range_pages  # at most one range; corrected once it is opened
        if doc.pending:
            return len(doc.pending[0].plans)
        return None

    def next_task(self) -> Task | None:
        """The next task to submit, in document order, if the budget has room for it."""
        for doc in self._docs:
            cost = self._cost(doc)
            if cost is None:
                continue
            if self.reserved + cost > self.window:
                return None  # strict priority: a later document never jumps the queue
            return self._submit(doc, cost)
        return None

    def wants_job(self) -> bool:
        """True when nothing known can be submitted and a new document's first task
        would fit: read one more job."""
        if len(self._docs) >= self._max_docs or self.reserved + self.range_pages > self.window:
            return False
        return all(self._cost(doc) is None for doc in self._docs)

    def _submit(self, doc: _Doc, cost: int) -> Task:
        task_id, self._next_id = self._next_id, self._next_id + 1
        if not doc.started:
            doc.started = True
            task: Task = ("first", task_id, doc.job, self.range_pages)
            label = "opening it"
        else:
            range_task = doc.pending.popleft()
            task = ("range", task_id, range_task)
            label = f"reading {range_task.label}"
        slot = _Slot(task_id, doc, cost, label)
        doc.slots.append(slot)
        self._slots[task_id] = slot
        self.reserved += cost
        return task

    # -- messages from the workers -----------------------------------------------------

    def handle_all(self, messages: list[tuple[Any, ...]]) -> None:
        while messages:
            self.handle(messages.pop(0))

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, task_id = message[0], message[1]
        slot = self._slots.get(task_id)
        if slot is None:
            return
        if kind == "page":
            if slot.discarded:
                self._release(slot, 1)
            else:
                slot.pages.append(message[2])
            return
        if kind == "opened":
            if not slot.discarded:
                self._opened(slot, message[2])
            return
        # done, error or crashed: nothing more comes for this task
        del self._slots[task_id]
        slot.done = True
        self._release(slot, slot.reserved - len(slot.pages))
        if kind == "done" or slot.discarded:
            return
        doc = slot.doc
        if kind == CRASHED:
            slot.error = WorkerCrashedError(str(doc.job.path), slot.label, message[2])
        else:
            slot.error = from_wire(message[2])
        doc.failed = True
        doc.pending.clear()
        later = list(doc.slots)[list(doc.slots).index(slot) + 1:]
        for other in later:  # pages after the failure are of no use
            self._discard(other)

    def _opened(self, slot: _Slot, document: Document) -> None:
        doc = slot.doc
        doc.document = document
        ranges = split_ranges(document, doc.job, self.range_pages)
        first = len(ranges[0].plans) if ranges else 0
        slot.label = f"reading {ranges[0].label}" if ranges else slot.label
        self._release(slot, slot.reserved - first)
        doc.pending = deque(ranges[1:])

    def _release(self, slot: _Slot, pages: int) -> None:
        slot.reserved -= pages
        self.reserved -= pages

    def _discard(self, slot: _Slot) -> None:
        slot.discarded = True
        self._release(slot, len(slot.pages))
        slot.pages.clear()

    # -- events, in order ------------------------------------------------------------------

    def has_event(self) -> bool:
        while self._docs:
            doc = self._docs[0]
            if doc.slots:
                slot = doc.slots[0]
                if slot.pages or (slot.done and slot.error is not None):
                    return True
                if not slot.done:
                    return False
                doc.slots.popleft()  # finished and handed over
                continue
            return doc.fully_submitted and not doc.failed
        return False

    def pop_event(self) -> Event:
        """The due event (call after ``has_event``); raises MissingDependencyError."""
        doc = self._docs[0]
        if doc.slots:
            slot = doc.slots[0]
            if slot.pages:
                self._release(slot, 1)
                return PageReady(doc.job, slot.pages.popleft())
            self._docs.popleft()
            for other in doc.slots:
                self._discard(other)
            error = slot.error
            if error is None:  # a slot leaves the queue with pages or with its error
                raise RetrieverError(f"page schedule: {doc.job.path} ended without an error")
            if isinstance(error, MissingDependencyError):
                raise error
            return DocumentFailed(doc.job, error)
        self._docs.popleft()
        if doc.document is None:  # opened before its first range was scheduled
            raise RetrieverError(f"page schedule: {doc.job.path} ended before it was opened")
        return DocumentEnd(doc.job, doc.document.page_count)
