"""Request and response schemas: what the OpenAPI document shows.

``Hit`` and ``Region`` are the JSON of ``retriever search --json`` (``Hit.to_dict()``),
field for field, plus ``image_id``: an opaque id for ``GET /images/{image_id}`` (the page,
or the region's crop). Fields the CLI leaves out when empty (``crop_path``, ``paths``) are
left out here too.
"""

from __future__ import annotations

__all__ = ["Region", "Hit", "SearchRequest", "SearchResponse", "ContextRequest",
           "Citation", "ContextResponse", "CollectionList", "CollectionInfo",
           "UploadedDocument", "UploadFailure", "UploadResponse", "DeleteResponse",
           "ErrorResponse", "Health"]

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["hybrid", "vector", "lexical"]
_COLLECTION = Field("default", description="Collection name.", max_length=128)


class Region(BaseModel):
    bbox: list[float] = Field(..., min_length=4, max_length=4,
                              description="[x0, y0, x1, y1] normalized to [0, 1], origin top left")
    text: str
    score: float
    crop_path: Optional[str] = None
    image_id: Optional[str] = Field(None, description="GET /images/{image_id}: the crop")


class Hit(BaseModel):
    rank: int
    score: float
    doc_id: str
    source: str
    page: int = Field(..., description="1-based")
    page_width: int
    page_height: int
    regions: list[Region]
    crop_path: Optional[str] = None
    paths: Optional[list[str]] = None
    image_id: Optional[str] = Field(None, description="GET /images/{image_id}: the page")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., min_length=1, max_length=4000)
    collection: str = _COLLECTION
    k: int = Field(5, ge=1, le=100, description="Pages to return.")
    mode: Mode = "hybrid"
    max_regions: int = Field(5, ge=0, le=100, description="Regions per hit (0: no cap).")


class SearchResponse(BaseModel):
    hits: list[Hit]


class ContextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., min_length=1, max_length=4000)
    collection: str = _COLLECTION
    k: int = Field(5, ge=1, le=100)
    budget: int = Field(2000, ge=1, le=1_000_000, description="Tokens at most.")
    images: Optional[Literal["base64"]] = Field(
        None, description="base64: inline a PNG crop of each cited region")
    mode: Mode = "hybrid"


class Citation(BaseModel):
    number: int
    label: str
    doc_id: str
    source: str
    page: int
    bbox: list[float] = Field(..., min_length=4, max_length=4)
    text: str
    score: float
    level: str
    hit_rank: int
    page_width: int
    page_height: int
    truncated: bool
    image_base64: Optional[str] = None
    image_id: Optional[str] = None


class ContextResponse(BaseModel):
    query: str
    budget: int
    tokens: int
    tokenizer: str
    omitted: int
    duplicates: int
    prompt: str
    citations: list[Citation]
    warnings: list[str]


class CollectionList(BaseModel):
    collections: list[str]


class ShardInfo(BaseModel):
    name: str
    documents: int
    pages: int


class CollectionInfo(BaseModel):
    """``retriever collections info --json``, less the server's own paths."""

    collection: str
    backend: str
    encoder: dict[str, Any]
    quantization: str
    compressor: Optional[Any] = None
    indexer_options: dict[str, Any]
    schema_version: int
    documents: int
    pages: int
    vectors: Optional[int] = None
    shards: Optional[list[ShardInfo]] = Field(
        None, description="For a collection served in shards (`serve --ray`): each shard")


class UploadedDocument(BaseModel):
    filename: str
    doc_id: str
    status: Literal["indexed", "unchanged", "replaced", "moved", "copied"]


class UploadFailure(BaseModel):
    filename: str
    reason: str
    detail: str
    error: str = Field(..., description="The line `retriever index` prints for it")


class UploadResponse(BaseModel):
    collection: str
    documents: list[UploadedDocument]
    failed: list[UploadFailure]
    pages: int


class DeleteResponse(BaseModel):
    collection: str
    doc_id: str
    pages: int


class ErrorResponse(BaseModel):
    error: str
    hint: Optional[str] = None
    exit_code: int = 1
    failed: Optional[list[UploadFailure]] = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
