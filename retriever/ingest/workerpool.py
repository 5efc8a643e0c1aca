"""Worker processes for page production: tasks in, messages out, crashes attributed.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies (poppler
segfaults on a hostile PDF) the whole executor breaks and every pending future fails,
with no way to tell which task killed it. Here each worker has its own pipe and runs its
tasks in the order it got them, sending every message before it starts the next task, so
after a death the first unfinished task of that worker is the one that killed it: it
becomes a ``crashed`` message, the worker's other tasks go to its replacement, and the run
goes on.

Workers are fresh interpreters (``python -c`` importing this module, about 0.25 s of
imports each, once per run), connected by a socket pair: ``fork`` would copy the main
process's torch / onnxruntime thread pools into a child, where they can deadlock;
``multiprocessing``'s ``spawn`` and ``forkserver`` would import the caller's ``__main__``
script again in every worker (a script without an ``if __name__ == "__main__"`` guard
then starts its indexing again in each child), and ``forkserver`` children would see the
environment of the moment the server started. Each worker runs in its own session, so a
terminal's Ctrl-C reaches only the main process (which then ends the workers), and killing
a worker's process group also ends the poppler or tesseract process it was waiting for.
"""

from __future__ import annotations

__all__ = ["CRASHED", "WorkerPool", "run_task"]

import os
import pickle
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from ..errors import RetrieverError
from .pagework import (
    DocumentJob,
    ProducerSettings,
    RangeTask,
    open_job,
    produce_range,
    split_ranges,
    to_wire,
)

#: the message a worker's death becomes: (CRASHED, task_id, how it died in words)
CRASHED = "crashed"
_JOIN_TIMEOUT_S = 2.0

# Tasks:    ("first", task_id, job, pages_per_range): open the document, then its first range
#           ("range", task_id, RangeTask)
#           None: exit
# Setup:    the parent's sys.path, then the ProducerSettings: first thing on the socket
# Messages: ("ready",)                                    worker set up
#           ("opened", task_id, Document)                 first task only, before its pages
#           ("page", task_id, Page) ... then ("done", task_id) or ("error", task_id, WireError)
Task = tuple[Any, ...]
Message = tuple[Any, ...]


def run_task(task: Task, settings: ProducerSettings) -> Iterator[Message]:
    """The messages one task produces (used by the worker loop)."""
    kind, task_id = task[0], task[1]
    try:
        if kind == "first":
            job: DocumentJob = task[2]
            document = open_job(job, settings)
            yield ("opened", task_id, document)
            ranges = split_ranges(document, job, task[3])
            pages = produce_range(ranges[0], settings) if ranges else iter(())
        else:
            range_task: RangeTask = task[2]
            pages = produce_range(range_task, settings)
        for page in pages:
            yield ("page", task_id, page)
            del page
        yield ("done", task_id)
    except Exception as exc:  # noqa: BLE001 - every failure is the document's, reported
        yield ("error", task_id, to_wire(exc))


def worker_entry(fd: int) -> None:
    """A worker's whole life: set up from the first message, then run tasks until told to
    stop or the main process is gone. ``fd`` is its end of the socket pair."""
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when we stop
    # One page at a time per worker, as many workers as cores: tesseract's own OpenMP
    # threads would only oversubscribe the machine.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        # the parent's sys.path first: the OCR engine's class must be importable to
        # unpickle the settings that carry it
        sys.path[:] = conn.recv()
        settings: ProducerSettings = conn.recv()
    except (EOFError, OSError):
        return
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the main process is gone
            return
        if task is None:
            return
        try:
            for message in run_task(task, settings):
                # Synchronous on purpose: a task's messages are all in the pipe before the
                # next task starts, which is what makes crash attribution exact.
                conn.send(message)
        except OSError:  # BrokenPipeError and friends: nobody is listening any more
            return


_ENTRY = "import sys; from retriever.ingest.workerpool import worker_entry; " \
         "worker_entry(int(sys.argv[1]))"


def _worker_environ() -> dict[str, str]:
    """This process's environment, with the directory ``retriever`` was imported from
    first on PYTHONPATH: a source checkout that is not installed still finds itself."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    tasks: deque[Task] = field(default_factory=deque)  # sent, not finished, in order
    ready: bool = False


class WorkerPool:
    """``size`` worker processes, each holding at most ``depth`` tasks."""

    def __init__(self, size: int, settings: ProducerSettings, *, depth: int = 2) -> None:
        self.size, self.depth = size, depth
        self._init = (pickle.dumps(list(sys.path)), pickle.dumps(settings))
        self._workers: list[_Worker] = []
        #: workers replaced after dying
        self.restarts = 0

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                # stdout is the caller's (``retriever index --json``): a plugin's stray
                # print must not land there
                stdout=subprocess.DEVNULL, start_new_session=True, env=_worker_environ(),
            )
        finally:
            theirs.close()  # else the socket never reports EOF when the worker dies
        conn = Connection(ours.detach())
        for message in self._init:
            conn.send_bytes(message)
        return _Worker(process, conn)

    def close(self) -> None:
        """End every worker now (and whatever poppler / tesseract it was running)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            _kill(worker)
        for worker in workers:
            _reap(worker)
            worker.conn.close()
        

    # -- tasks -----------------------------------------------------------------------

    def free_slots(self) -> int:
        return sum(self.depth - len(w.tasks) for w in self._workers)

    def idle(self) -> bool:
        """No task is out: nothing will arrive."""
        return not any(w.tasks for w in self._workers)

    def submit(self, task: Task) -> None:
        worker = min(self._workers, key=lambda w: len(w.tasks))
        worker.tasks.append(task)
        try:
            worker.conn.send(task)
        except OSError:
            pass  # it just died: receive() finds out and hands the task to its replacement

    def receive(self, timeout: float | None = None) -> list[Message]:
        """Messages from the workers, waiting up to ``timeout`` for the first one. A dead
        worker's first unfinished task comes back as ``(CRASHED, task_id, detail)``."""
        by_conn = {worker.conn: worker for worker in self._workers}
        messages: list[Message] = []
        dead = [by_conn[conn] for conn in wait(list(by_conn), timeout)  # type: ignore[index]
                if not _drain(by_conn[conn], messages)]  # type: ignore[index]
        for worker in dead:
            messages.extend(self._replace(worker))
        return messages

    def _replace(self, worker: _Worker) -> list[Message]:
        how = _death(_reap(worker))  # end of file: it is exiting, or gone
        _kill(worker)  # its group may still hold a poppler or tesseract process
        worker.conn.close()
        self._workers.remove(worker)
        if not worker.ready:
            raise RetrieverError(f"a page worker process died before it started ({how})",
                                 hint="run with workers=0 to see the error in-process")
        self.restarts += 1
        replacement = self._spawn()
        self._workers.append(replacement)
        crashed: list[Message] = []
        if worker.tasks:
            culprit, *innocent = worker.tasks
            crashed.append((CRASHED, culprit[1], how))
            for task in innocent:  # never started: they run again in the replacement
                replacement.tasks.append(task)
                replacement.conn.send(task)
        return crashed


def _drain(worker: _Worker, messages: list[Message]) -> bool:
    """Read everything the worker has sent so far; False at end of file: it is gone, and
    everything it sent before dying has been read (the socket keeps it until then)."""
    try:
        while worker.conn.poll():
            message = worker.conn.recv()
            kind = message[0]
            if kind == "ready":
                worker.ready = True
                continue
            if kind in ("done", "error"):
                worker.tasks.popleft()
            messages.append(message)
    except (EOFError, OSError):
        return False
    return True


def _kill(worker: _Worker) -> None:
    """SIGKILL the worker's process group (itself and the tool it runs), if any is left."""
    process = worker.process
    if hasattr(os, "killpg"):
        try:
            # Its own session, so its pid is its group's id; the group outlives a dead
            # worker while a poppler or tesseract child of it is still running.
            os.killpg(process.pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
    if process.poll() is None:
        process.kill()


def _reap(worker: _Worker) -> int | None:
    """Its exit status, waiting a little; killed if it will not go (None then)."""
    try:
        return worker.process.wait(_JOIN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()
        return None


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        extra = ": out of memory?" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{extra}"
    return f"exit code {returncode}"
