"""One open ``Retriever`` per collection, shared by every request.

Why cached: opening a collection loads its encoder (a model) and its search state (codes,
vectors in memory); doing that per request would cost seconds. Searches share the open
``Retriever`` from many threads at once (the SDK supports that); uploads and deletes go
through the same object, one at a time per collection (``Handle.writing``), and the SDK's
own writer lock (an OS lock per collection) still refuses a second writer from another
process with a 409. Searches never take either lock, so they keep running while an
upload indexes: the indexer commits each document atomically and a search sees the
collection either before or after it.
"""

from __future__ import annotations

__all__ = ["Collections", "Handle", "ServerState", "not_found"]

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CollectionBusyError, CollectionNotFoundError, UsageError
from ..config import validate_collection_name
from ..sdk import Retriever

_WRITE_WAIT_S = 600.0  # an upload waits this long for the one before it, then 409


def not_found(name: str) -> CollectionNotFoundError:
    # one message for a bad name and a missing collection: both are "no such thing here"
    return CollectionNotFoundError(f"no collection named {name!r}",
                                   hint="GET /collections lists them; an upload creates one")


@dataclass
class Handle:
    retriever: Retriever  # or a sharded.ShardedView: the same surface for the routes
    writing: threading.Lock = field(default_factory=threading.Lock)
    _warm: threading.Lock = field(default_factory=threading.Lock)
    _opened: bool = False
    _loaded: bool = False

    def warm(self, encoder: bool = True) -> Retriever:
        """Open the index (and load the encoder) once, before threads share them: two
        threads opening them at once would each load their own. ``encoder=False``: a
        lexical search or an image, which need no model."""
        if not self._opened or (encoder and not self._loaded):
            with self._warm:
                if not self._opened:
                    self.retriever.indexer  # noqa: B018 - opens it (404 when missing)
                    self._opened = True
                if encoder and not self._loaded:
                    self.retriever.encoder  # noqa: B018 - loads the model
                    self._loaded = True
        return self.retriever

    @contextmanager
    def write(self) -> Iterator[Retriever]:
        if not self.writing.acquire(timeout=_WRITE_WAIT_S):
            raise CollectionBusyError(f"collection {self.retriever.collection!r} is busy "
                                      "with another upload", hint="retry later")
        try:
            yield self.retriever
        finally:
            self.writing.release()


class Collections:
    """``ray``: a collection split into shards (``NAME.shard-I-of-S``) is also served as
    ``NAME``, searched by one Ray actor per shard (``sharded.ShardedView``); ``ray_setup``
    runs first in each actor (e.g. to register a plugin)."""

    def __init__(self, data_dir: Path, *, encoder: str | None = None,
                 encoder_options: dict[str, Any] | None = None,
                 ocr: str | None = "tesseract", ray: bool = False,
                 ray_setup: Callable[[], None] | None = None) -> None:
        self.data_dir = data_dir
        self.encoder = encoder
        self.encoder_options = dict(encoder_options or {})
        self.ocr = ocr
        self.ray = ray
        self.ray_setup = ray_setup
        self._handles: dict[str, Handle] = {}
        self._lock = threading.Lock()

    @staticmethod
    def check_name(name: str) -> str:
        try:
            return validate_collection_name(name)
        except UsageError:
            raise not_found(name) from None

    def names(self) -> list[str]:
        names = Retriever.list_collections(self.data_dir)
        if self.ray:
            names = sorted(set(names) | set(self._sharded()))
        return names

    def _sharded(self) -> dict[str, int]:
        from .sharded import served_shards

        return served_shards(self.data_dir)

    def _open(self, name: str, create: bool) -> Handle:
        name = self.check_name(name)
        with self._lock:
            handle = self._handles.get(name)
            if handle is not None:
                return handle
            if self.ray and name in self._sharded():
                from .sharded import ShardedView

                handle = self._handles[name] = Handle(ShardedView(
                    name, self.data_dir, ocr=self.ocr, setup=self.ray_setup))
                return handle
            retriever = Retriever(name, data_dir=self.data_dir, ocr=self.ocr)
            if not retriever.exists:
                if not create:  # not cached: made-up names must not grow the table
                    raise not_found(name)
                # only a new collection takes the server's encoder: an existing one
                # rebuilds its own from its manifest
                retriever = Retriever(name, data_dir=self.data_dir, encoder=self.encoder,
                                      encoder_options=self.encoder_options, ocr=self.ocr)
            handle = self._handles[name] = Handle(retriever)
            return handle

    def get(self, name: str) -> Handle:
        """An existing collection (404 otherwise), opened once."""
        handle = self._open(name, create=False)
        if not handle.retriever.exists:  # deleted on disk since (collections delete)
            self.forget(name)
            raise not_found(name)
        return handle

    def for_writing(self, name: str) -> Handle:
        """An existing collection, or a new one made with the server's encoder."""
        return self._open(name, create=True)

    def forget(self, name: str) -> None:
        with self._lock:
            handle = self._handles.pop(name, None)
        if handle is not None:
            handle.retriever.close()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.retriever.close()


@dataclass
class ServerState:
    """Everything the routes share; one per app (``create_app``)."""

    collections: Collections
    uploads: Any  # uploads.UploadStore
    ids: Any  # ids.ImageIds
    metrics: Any  # metrics.Metrics
    max_upload_bytes: int
    tokenizer: str | None = None  # the server's: a client never names a file to load
    index_workers: int = 0  # in-process: no worker processes forked from a threaded server
    image_dpi: int = 150
