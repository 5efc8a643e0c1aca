"""The JSON routes: search, context, collections, uploads and deletes.

Routes are plain functions (``def``), so FastAPI runs each in its thread pool: searches
run side by side, and an upload that indexes for a minute holds one thread, not the
server.
"""

from __future__ import annotations

__all__ = ["build_router"]

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse

from ..errors import DocumentNotFoundError, ExitCode, RetrieverError
from ..indexing import IndexReport
from ..types import Hit
from . import models
from .errors import error_body
from .images import render_crop
from .state import Collections, ServerState
from .uploads import StoredFile, UploadTooLarge

_DOC_ID = re.compile(r"^[0-9a-f]{8,64}$")
_READ_RETRIES = 3
_MISSING_PAGE = " has no page "  # retriever.records.missing_pages_error
T = TypeVar("T")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": models.ErrorResponse} for code in (400, 401, 404, 409, 413, 422, 503)}


def _hit_json(state: ServerState, collection: str, hit: Hit) -> dict[str, Any]:
    out = hit.to_dict()  # exactly `search --json`, plus the image ids
    out["image_id"] = state.ids.make(collection, hit.doc_id, hit.page)
    for region, data in zip(hit.regions, out["regions"]):
        data["image_id"] = state.ids.make(collection, hit.doc_id, hit.page, region.bbox)
    return out


def _reading(run: Callable[[], T]) -> T:
    """Run a search again when a delete removed a page between its ranking and its read
    (the SDK's hint says as much: "search again"); the next one sees the new version."""
    for attempt in range(_READ_RETRIES):
        try:
            return run()
        except RetrieverError as exc:
            if type(exc) is not RetrieverError or _MISSING_PAGE not in exc.message or (
                    attempt == _READ_RETRIES - 1):
                raise
    raise AssertionError("unreachable")


def _failure_line(filename: str, reason: str, detail: str) -> str:
    return f"{filename}: {reason}" + (f" ({detail})" if detail else "")  # as FileFailure


def _upload_result(name: str, stored: list[StoredFile], report: IndexReport,
                   state: ServerState) -> tuple[dict[str, Any], list[StoredFile]]:
    """Each stored file's outcome by its client name, never the server's paths."""
    by_path: dict[str, StoredFile] = {}
    for s in stored:
        by_path[str(s.path)] = by_path[str(s.path.resolve())] = s
    documents, failed, failed_files = [], [], []
    for s in stored:
        key = str(s.path.resolve())
        status = next((label for label, paths in (
            ("replaced", report.replaced), ("indexed", report.indexed),
            ("unchanged", report.unchanged), ("moved", report.moved),
            ("copied", report.copied)) if key in paths), None)
        if status is not None:
            documents.append({"filename": s.filename, "doc_id": s.doc_id, "status": status})
    for failure in report.failed:
        s = by_path.get(failure.path)
        if s is None:
            continue
        detail = failure.detail.replace(str(s.path), s.filename)
        failed.append({"filename": s.filename, "reason": failure.reason, "detail": detail,
                       "error": _failure_line(s.filename, failure.reason, detail)})
        failed_files.append(s)
    return ({"collection": name, "documents": documents, "failed": failed,
             "pages": report.pages}, failed_files)


def build_router(state: ServerState) -> APIRouter:
    router = APIRouter(responses=_ERRORS)
    collections: Collections = state.collections

    @router.post("/search", response_model=models.SearchResponse,
                 response_model_exclude_none=True, tags=["search"])
    def search(body: models.SearchRequest) -> dict[str, Any]:
        """Top ``k`` pages, each with the regions on it that answer (``search --json``)."""
        retriever = collections.get(body.collection).warm(encoder=body.mode != "lexical")
        hits = _reading(lambda: retriever.search(body.query, body.k, mode=body.mode,
                                                 max_regions=body.max_regions))
        return {"hits": [_hit_json(state, body.collection, h) for h in hits]}

    @router.post("/context", response_model=models.ContextResponse,
                 response_model_exclude_none=True, tags=["search"])
    def context(body: models.ContextRequest) -> dict[str, Any]:
        """Cited regions within a token budget, and the prompt text made of them."""
        retriever = collections.get(body.collection).warm(encoder=body.mode != "lexical")
        # images are cropped here, not by the SDK, so they go through the server's
        # checks on where a source may be (images.render_crop)
        ctx = _reading(lambda: retriever.context(body.query, k=body.k, budget=body.budget,
                                                 tokenizer=state.tokenizer, mode=body.mode))
        out = ctx.to_dict()
        for citation, data in zip(ctx.citations, out["citations"]):
            data["image_id"] = state.ids.make(body.collection, citation.doc_id,
                                              citation.page, citation.bbox)
            if body.images == "base64":
                png = render_crop(state, retriever, citation.doc_id, citation.page,
                                  citation.bbox)
                if png is not None:
                    import base64

                    data["image_base64"] = base64.b64encode(png).decode("ascii")
        return out

    @router.get("/collections", response_model=models.CollectionList, tags=["collections"])
    def list_collections() -> dict[str, Any]:
        return {"collections": collections.names()}

    @router.get("/collections/{name}", response_model=models.CollectionInfo,
                tags=["collections"])
    def collection_info(name: str) -> dict[str, Any]:
        info = collections.get(name).warm(encoder=False).info()
        info.pop("path", None)  # the server's own layout is not the client's business
        return info

    @router.post("/collections/{name}/documents", status_code=201,
                 response_model=models.UploadResponse, tags=["collections"])
    def upload(name: str, files: list[UploadFile] = File(
            ..., description="PDFs or images; each one document")) -> Any:
        """Store the files under the data directory and index them (the collection is
        created with the server's encoder on first upload). Bad files are reported
        like ``retriever index`` reports them; 422 when none could be indexed."""
        name = Collections.check_name(name)
        stored: list[StoredFile] = []
        try:
            for upload_file in files:
                stored.append(state.uploads.store(name, upload_file.file, upload_file.filename,
                                                  state.max_upload_bytes))
        except UploadTooLarge as exc:
            for s in stored:
                state.uploads.discard(s)
            raise HTTPException(413, detail=str(exc)) from None
        except BaseException:
            for s in stored:
                state.uploads.discard(s)
            raise
        handle = collections.for_writing(name)
        try:
            with handle.write() as retriever:
                report = retriever.index([s.path for s in stored], workers=state.index_workers)
        except BaseException:
            for s in stored:
                state.uploads.discard(s)
            raise
        state.metrics.indexed_pages.inc(report.pages)
        result, failed_files = _upload_result(name, stored, report, state)
        for s in failed_files:
            state.uploads.discard(s)
        if result["failed"] and not result["documents"]:
            first = result["failed"][0]
            return JSONResponse(error_body(first["error"], "nothing was indexed; the other "
                                           "files, if any, are listed in failed",
                                           ExitCode.ERROR, failed=result["failed"]),
                                status_code=422)
        return result

    @router.delete("/collections/{name}/documents/{doc_id}",
                   response_model=models.DeleteResponse, tags=["collections"])
    def delete_document(name: str, doc_id: str) -> dict[str, Any]:
        """Remove a document (by the ``doc_id`` hits and uploads give) and its upload."""
        missing = DocumentNotFoundError(f"no document {doc_id!r} in collection {name!r}")
        if not _DOC_ID.match(doc_id):  # never let it be read as a path by the SDK
            raise missing
        handle = collections.get(name)
        with handle.write() as retriever:
            handle.warm(encoder=False)
            if doc_id not in retriever.documents():
                raise missing
            report = retriever.delete([doc_id])
        state.uploads.remove_document(name, doc_id)
        return {"collection": name, "doc_id": doc_id, "pages": report.pages}

    return router

