"""What "committed data is never lost or corrupted" means, checked on a real collection.

``check_collection(home, collection, corpus)`` opens the collection the way a user does
(``retriever.Retriever(name, data_dir=home)``) and returns a list of problems, each one a
sentence naming the document, path or page at fault (empty: consistent):

* the collection opens (manifest and backend intact) and can be read;
* every stored document's pages are exactly ``1..n`` once each, ``n`` being its file's page
  count: the keys ``doc_id:page`` exist, nothing past ``n`` does, the stored count is their
  sum (no duplicate or orphan page), and, where the backend lets us list its rows, no key is
  stored twice;
* every stored ``doc_id`` is the content hash of a corpus file at one of its recorded
  paths (no stale version of a replaced file, no document nobody indexed), and no path is
  recorded for two documents (no file stored twice, old and new version side by side);
* searches (hybrid and lexical) for known phrases return pages of whole documents only,
  and find the phrase's document when it is stored;
* ``Retriever.pending()`` (pages staged, not searchable yet) names no committed document.

After an interrupted run (``complete=False``), ``before`` (the corpus state of the last
complete run: ``corpus_state(files)`` taken then) says what else is allowed: a file whose
content changed may still be stored at its old version (the commit that replaces it had not
happened), a file that was added may be missing, a deleted file may still be recorded; but
a file stored before the run is never stored at neither version, nor at both.
``complete=True`` (the default) is the state after a run that finished: every corpus file
is stored at its current content, nothing else is, and nothing is left staged.

``instrument_writes(before, after)`` calls a function around every write a commit makes
(the seams: each ``atomic_write`` of the FAISS files and of the staging area, LanceDB's
table creation, each Arrow batch of a merge-insert, a delete, the full-text index refresh
after a commit), so that a test can fail the k-th write or a process can kill itself there.

The helpers use only the SDK and the indexers' public reads (``documents``, ``paths``,
``get``, ``count``), plus a read of each built-in backend's raw rows to find duplicated
keys, which the public reads cannot show. Shared by the crash tests
(``tests/retriever/test_crash_safety.py``) and the soak (``benchmarks/crash_soak.py``).
"""

from __future__ import annotations

__all__ = ["corpus_state", "check_collection", "fingerprint", "stored_keys", "pending_pages",
           "instrument_writes"]

import hashlib
import importlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

#: path -> (doc_id, pages) of each corpus file
State = dict[str, tuple[str, int]]


def corpus_state(files: Iterable[str | os.PathLike[str]]) -> State:
    """``resolved path -> (content hash, page count)`` for each file, as it is now."""
    from retriever.ingest import content_hash, open_document

    state: State = {}
    for f in files:
        path = str(Path(f).resolve())
        doc = open_document(path, render=False)
        state[path] = (content_hash(path), int(doc.page_count))
    return state


def _as_state(corpus: Mapping[str, tuple[str, int]] | Iterable[str | os.PathLike[str]]) -> State:
    if isinstance(corpus, Mapping):
        return {str(k): (str(v[0]), int(v[1])) for k, v in corpus.items()}
    return corpus_state(corpus)


def stored_keys(indexer: Any) -> list[str] | None:
    """Every stored page key, duplicates included, for the built-in backends (None when
    the backend's rows cannot be listed)."""
    scan = getattr(indexer, "_scan", None)  # LanceDB: read the key column itself
    if scan is not None:
        try:
            return [str(k) for k in scan(["key"]).column("key").to_pylist()]
        except Exception:  # noqa: BLE001 - an internal read: fall back to the public checks
            return None
    fresh = getattr(indexer, "_fresh", None)  # FAISS: the live view of the current generation
    if fresh is not None:
        try:
            return [str(k) for k in fresh().keys.tolist()]
        except Exception:  # noqa: BLE001
            return None
    return None


def pending_pages(r: Any) -> dict[str, int]:
    """``Retriever.pending()`` (pages staged but not searchable) where it exists, else {}."""
    pending = getattr(r, "pending", None)
    if pending is None:
        return {}
    return {str(d): int(n) for d, n in pending().items()}


def _page_problems(indexer: Any, doc_id: str, where: str, n: int) -> list[str]:
    """Pages 1..n of ``doc_id`` exist, carry their own identity, and page n+1 does not."""
    from retriever.errors import RetrieverError

    keys = [f"{doc_id}:{p}" for p in range(1, n + 1)]
    problems: list[str] = []
    try:
        records = indexer.get(keys)
    except RetrieverError:
        missing = []
        for key in keys:
            try:
                indexer.get([key])
            except RetrieverError:
                missing.append(int(key.rsplit(":", 1)[1]))
        return [f"document {doc_id} ({where}) is half-indexed: {n} pages expected, pages "
                f"{missing} missing"]
    for p, record in enumerate(records, start=1):
        if record.doc_id != doc_id or record.page_number != p:
            problems.append(f"key {doc_id}:{p} holds page {record.page_number} of "
                            f"{record.doc_id}")
        if record.embedding.n and not all(0 <= v <= 1 for v in record.embedding.boxes.ravel()):
            problems.append(f"page {doc_id}:{p} has boxes outside [0, 1]")
    try:
        indexer.get([f"{doc_id}:{n + 1}"])
        problems.append(f"document {doc_id} ({where}) has a page {n + 1}, its file has {n}")
    except RetrieverError:
        pass
    return problems


def check_collection(
    home: str | os.PathLike[str],
    collection: str,
    corpus: Mapping[str, tuple[str, int]] | Iterable[str | os.PathLike[str]],
    *,
    before: Mapping[str, tuple[str, int]] | None = None,
    complete: bool = True,
    phrases: Mapping[str, str] | None = None,
    search: bool = True,
    forced: bool = False,
) -> list[str]:
    """Problems of ``collection`` in ``home`` against the corpus files (see module doc).

    ``corpus``: the files as they are now (paths, or ``corpus_state`` of them).
    ``before``: the corpus state the collection held before an interrupted run.
    ``phrases``: ``phrase -> doc_id`` of the document whose text holds the phrase; when
    that document is stored whole, both searches must find it in their top 5.
    ``forced``: the interrupted run re-indexed with ``force``, so a stored document may be
    staged again (its new encoding, not committed yet) without that being a fault.
    """
    from retriever import Retriever
    from retriever.errors import RetrieverError

    now = _as_state(corpus)
    before = _as_state(before or {})
    problems: list[str] = []
    r = Retriever(collection, data_dir=home)
    try:
        if not r.exists:
            if complete and now:
                return [f"collection {collection!r} does not exist after a complete run"]
            if before:
                return [f"collection {collection!r} is gone: it held {len(before)} files"]
            return []
        try:
            info = r.info()
            docs = r.documents()
            indexer = r.indexer
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            if not before and not complete:
                # nothing was committed yet; whether a resume copes is the next check's job
                return []
            return [f"collection {collection!r} does not open: {type(exc).__name__}: {exc}"]

        # which document may live where, and how many pages each version has
        pages_of = {d: n for d, n in [*now.values(), *before.values()]}
        owner: dict[str, str] = {}
        for doc_id, paths in docs.items():
            if len(set(paths)) != len(paths):
                problems.append(f"document {doc_id} records a path twice: {paths}")
            for p in paths:
                if p in owner and owner[p] != doc_id:
                    problems.append(f"{p} is stored twice: as {owner[p]} and as {doc_id}")
                owner.setdefault(p, doc_id)

        expected_pages = 0
        whole: set[str] = set()
        for doc_id, paths in sorted(docs.items()):
            where = ", ".join(paths)
            n = pages_of.get(doc_id)
            if n is None:
                problems.append(f"document {doc_id} at {where} is the content of no corpus "
                                "file, now or before the run (a stale or foreign version)")
                continue
            current = [p for p in paths if now.get(p, ("",))[0] == doc_id]
            previous = [p for p in paths if before.get(p, ("",))[0] == doc_id]
            if not current and (complete or not previous):
                problems.append(f"document {doc_id} at {where} is not the current content of "
                                "any of its paths (a stale version was kept)")
            if complete:
                stale = [p for p in paths if p not in current]
                if current and stale:
                    problems.append(f"document {doc_id} still records paths whose file is "
                                    f"gone or changed: {stale}")
            found = _page_problems(indexer, doc_id, where, n)
            problems.extend(found)
            if not found:
                whole.add(doc_id)
            expected_pages += n
        count = indexer.count()
        if count != expected_pages or info.get("pages") != count:
            problems.append(f"the collection stores {count} pages (info: {info.get('pages')}), "
                            f"its {len(docs)} documents have {expected_pages}: duplicate or "
                            "orphan pages")
        keys = stored_keys(indexer)
        if keys is not None:
            twice = sorted(k for k, c in Counter(keys).items() if c > 1)
            if twice:
                problems.append(f"page keys stored more than once: {twice[:10]}")
            orphans = sorted({k.rsplit(":", 1)[0] for k in keys} - set(docs))
            if orphans:
                problems.append(f"pages of documents without paths: {orphans[:10]}")

        # per file: one version or the other, never neither, never both
        for path in sorted(set(now) | set(before)):
            cur = now.get(path, (None, 0))[0]
            old = before.get(path, (None, 0))[0]
            stored = owner.get(path)
            if complete:
                if cur is not None and stored != cur:
                    problems.append(f"{path} is not stored at its current content {cur} "
                                    f"(stored: {stored})")
                elif cur is None and stored is not None:
                    problems.append(f"{path} was deleted but is still stored as {stored}")
            elif stored not in {cur, old}:
                problems.append(f"{path} is stored as {stored}, neither its content before "
                                f"the run ({old}) nor now ({cur})")
            elif stored is None and old is not None and cur is not None:
                problems.append(f"{path} lost: it was stored as {old} before the run and now "
                                "is stored at no version")
        left = pending_pages(r)
        if complete and left:
            problems.append(f"pages still staged after a complete run: {left}")
        elif set(left) & set(docs) and not forced:
            problems.append(f"pending() lists documents that are committed (searchable): "
                            f"{sorted(set(left) & set(docs))}")

        if search:
            problems.extend(_search_problems(r, whole, phrases or {}))
    except RetrieverError as exc:
        problems.append(f"reading collection {collection!r} failed: {exc}")
    finally:
        r.close()
    return problems


def _search_problems(r: Any, whole: set[str], phrases: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for phrase, doc_id in phrases.items():
        for mode in ("hybrid", "lexical"):
            try:
                hits = r.search(phrase, k=5, mode=mode, regions=False)
            except Exception as exc:  # noqa: BLE001 - a search that fails is the finding
                problems.append(f"{mode} search {phrase!r} failed: {type(exc).__name__}: {exc}")
                continue
            for hit in hits:
                if hit.doc_id not in whole:
                    problems.append(f"{mode} search {phrase!r} returned page {hit.page} of "
                                    f"{hit.doc_id}, which is not a whole stored document")
            if doc_id in whole and doc_id not in {h.doc_id for h in hits}:
                problems.append(f"{mode} search {phrase!r} did not find {doc_id} in its top "
                                f"5: {[(h.doc_id, h.page) for h in hits]}")
    return problems


def fingerprint(home: str | os.PathLike[str], collection: str) -> dict[str, Any]:
    """What a reader sees of the collection: documents with their paths, and per page key a
    digest of its vectors, boxes, size and regions text. Equal fingerprints: the same
    collection as far as search can tell. ``{}`` when the collection does not exist."""
    from retriever import Retriever

    r = Retriever(collection, data_dir=home)
    try:
        if not r.exists:
            return {}
        docs = r.documents()
        indexer = r.indexer
        keys = stored_keys(indexer)
        if keys is None:  # a backend we cannot list: walk each document's pages
            keys = []
            from retriever.errors import RetrieverError

            for doc_id in docs:
                p = 1
                while True:
                    try:
                        indexer.get([f"{doc_id}:{p}"])
                    except RetrieverError:
                        break
                    keys.append(f"{doc_id}:{p}")
                    p += 1
        pages = {}
        for record in indexer.get(sorted(set(keys))):
            digest = hashlib.sha256()
            digest.update(record.embedding.vectors.astype("float32").tobytes())
            digest.update(record.embedding.boxes.astype("float32").tobytes())
            digest.update(repr((record.width, record.height, record.has_text_layer)).encode())
            digest.update("\n".join(reg.text for reg in record.regions).encode())
            pages[record.key] = digest.hexdigest()[:16]
        return {"documents": {d: sorted(p) for d, p in docs.items()}, "count": indexer.count(),
                "keys": sorted(keys), "pages": pages}
    finally:
        r.close()


#: module -> attributes that write (module-level functions, or ``Class.method``)
_WRITE_SEAMS = {
    "indexers.lancedb.indexer": [("LanceDBIndexer._to_batch", "batch"),
                                 ("LanceDBIndexer._delete_now", "delete")],
    "indexers.lancedb.fulltext": [("FullText.refresh", "fts")],
    "lancedb.db": [("LanceDBConnection.create_table", "create")],
}
#: modules whose ``atomic_write`` (looked up at call time) writes collection files
_ATOMIC_WRITERS = ("retriever.fileio", "retriever.staging", "indexers.faiss.files",
                   "indexers.faiss.store")


def _detail(kind: str, args: tuple[Any, ...]) -> str:
    if kind == "file" and args:
        return Path(args[0]).name
    if kind == "batch" and args:
        return f"{len(args[0])} pages"
    return ""


def instrument_writes(before: Callable[[str, str], None] | None = None,
                      after: Callable[[str, str], None] | None = None) -> Callable[[], None]:
    """Call ``before(kind, detail)`` / ``after(kind, detail)`` around every write of a
    commit (kinds: file, batch, delete, fts, create); -> a function that undoes it.

    ``before`` raising makes the write fail (nothing of it happens). Seams a version of
    the code does not have are skipped."""
    undo: list[tuple[Any, str, Any]] = []

    def wrap(kind: str, original: Callable[..., Any], bound: bool) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            detail = _detail(kind, args[1:] if bound else args)
            if before is not None:
                before(kind, detail)
            result = original(*args, **kwargs)
            if after is not None:
                after(kind, detail)
            return result
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper

    for name in {*_WRITE_SEAMS, *_ATOMIC_WRITERS}:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    for name, seams in _WRITE_SEAMS.items():
        module = sys.modules.get(name)
        for dotted, kind in seams:
            owner_name, _, attr = dotted.rpartition(".")
            owner = getattr(module, owner_name, None) if module is not None else None
            original = owner.__dict__.get(attr) if owner is not None else None
            if original is None:
                continue
            undo.append((owner, attr, original))
            setattr(owner, attr, wrap(kind, original, True))
    writers = {getattr(sys.modules.get(n), "atomic_write", None) for n in _ATOMIC_WRITERS}
    writers.discard(None)
    for name, module in list(sys.modules.items()):
        if not name.startswith(("retriever.", "indexers.")) or module is None:
            continue
        original = module.__dict__.get("atomic_write")
        if original is not None and original in writers:
            undo.append((module, "atomic_write", original))
            module.atomic_write = wrap("file", original, False)

    def restore() -> None:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)
        undo.clear()

    return restore
