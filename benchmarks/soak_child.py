"""The crash soak's processes (``benchmarks/crash_soak.py``): the encoder built once in the
parent, forked children that index or check a collection and report events on a pipe,
and the kills (the parent's, or a child's own at its k-th write).

Imported after ``crash_soak`` pinned every thread pool to one thread: nothing here may
start threads in the parent, since a fork does not carry them.
"""

from __future__ import annotations

__all__ = ["COLLECTION", "Child", "child_check", "child_index", "fork", "preload_encoder",
           "send"]

import json
import os
import select
import signal
import time
import traceback
from typing import Any, Callable

from soak_corpus import SAMPLES

COLLECTION = "soak"

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
        child = Child(*fork(warm_up)).run(limit=900)
        if child.status != 0:
            raise SystemExit(f"the encoder's warm-up failed: {child.last('error')}")
    return _ENCODER


def send(fd: int, event: dict[str, Any]) -> None:
    data = (json.dumps(event) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def fork(fn: Callable[..., Any], *args: Any) -> tuple[int, int]:
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
                send(write, {"e": "error", "error": f"{type(exc).__name__}: {exc}",
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
        send(fd, {"e": "write", "what": kind, "detail": detail, "n": count,
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


def child_index(fd: int, home: str, backend: str, folder: str, force: bool,
                 announce_writes: bool, kill_at: int | None = None, after: bool = False) -> None:
    from retriever import Retriever

    if announce_writes:
        _report_writes(fd, kill_at, after)

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "files":
            send(fd, {"e": "file", "path": detail, "t": time.monotonic()})
        elif stage == "pages":
            send(fd, {"e": "page", "n": done, "path": detail, "t": time.monotonic()})

    send(fd, {"e": "start", "t": time.monotonic()})
    with Retriever(COLLECTION, data_dir=home, indexer=backend) as r:
        report = r.index([folder], sync=True, force=force, progress=progress)
    send(fd, {"e": "done", "t": time.monotonic(), "report": _report_of(report)})


def child_check(fd: int, home: str, state: dict[str, Any], before: dict[str, Any],
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
    send(fd, {"e": "checked", "problems": problems, "stored": stored, "pending": pending})


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
