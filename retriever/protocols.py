"""The contracts plugins implement: encoders, indexers, OCR engines, compressors."""

from __future__ import annotations

__all__ = ["Encoder", "Indexer", "LexicalIndexer", "MaintainableIndexer", "OCREngine",
           "Compressor", "ScoredPage", "RegionScore"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL.Image import Image

    from datetime import timedelta

    from .integrity import VerifyReport
    from .maintenance import OptimizeReport, StorageStats
    from .manifest import EncoderIdentity, Manifest
    from .search.lexical import QueryTerms
    from .types import MultiVector, Page, PageRecord, Region


@runtime_checkable
class Encoder(Protocol):
    """Turns pages and queries into multi-vectors whose vectors carry page boxes."""

    name: str
    dim: int
    kind: Literal["multi", "single"]
    #: what the encoder reads from a page; ingest skips work nobody needs
    needs_image: bool
    #: True for encoders that embed text regions: a document without any text then fails
    #: with reason "no-text" instead of being indexed with no vectors
    needs_regions: bool
    #: rasterization DPI it wants for PDFs
    dpi: int
    #: optional: how grounding combines the vectors inside a region ("mean" or "max");
    #: the SDK uses "mean" (Snappy's choice for patch grids) when an encoder does not say
    #: optional: ``page_batch``, pages it wants per ``encode_pages`` call (its batch
    #: size); the pipeline hands it that many (8 when an encoder does not say)

    @property
    def identity(self) -> EncoderIdentity: ...

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]: ...

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]: ...


@dataclass(frozen=True)
class ScoredPage:
    """A page key (``doc_id:page``) with its retrieval score."""

    key: str
    score: float


@dataclass(frozen=True)
class RegionScore:
    """One region's lexical (BM25) score: page key, index into ``record.regions``."""

    key: str
    region: int
    score: float


@runtime_checkable
class Indexer(Protocol):
    """Stores page records of one collection and searches them."""

    manifest: Manifest

    def add(self, records: Sequence[PageRecord]) -> None:
        """Add pages; all pages of one call become visible together (one commit)."""

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete every page of these documents; return the number of pages removed."""

    def replace(
        self, records: Sequence[PageRecord], *, delete: Sequence[str] = (),
        paths: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """One commit: delete the ``delete`` documents, add ``records``, set ``paths``.

        A changed file is its new version and the removal of the old one at once, so a
        crash leaves one or the other, never both or neither. ``paths`` (doc_id -> every
        path the document is recorded at, the source first) applies to the documents of
        ``records`` and to stored ones, whose pages keep their vectors (a moved file is
        not encoded again). Records of a document without ``paths`` keep their own
        ``paths`` (default: their ``source``). Returns the pages of ``delete`` documents
        that are gone (pages rewritten by ``records`` do not count).

        Optional keyword ``staged`` (``Sequence[retriever.staging.StagedDocument]``):
        documents whose pages wait in the staging area, added by the same commit and read
        with ``StagedDocument.batches()`` a batch at a time, so memory does not grow with
        the document. An indexer without it is handed those pages in ``records``.
        """

    def paths(self) -> dict[str, list[str]]:
        """``doc_id -> every path it is recorded at``, the source first."""

    def search(self, queries: Sequence[MultiVector], k: int) -> list[list[ScoredPage]]:
        """Top ``k`` pages per query by MaxSim, best first."""

    def get(self, keys: Sequence[str]) -> list[PageRecord]:
        """Full records (vectors, boxes, regions) for page keys, in the order given."""

    def documents(self) -> dict[str, str]:
        """``doc_id -> source`` for every stored document."""

    def count(self) -> int:
        """Number of stored pages."""

    def close(self) -> None: ...


@runtime_checkable
class LexicalIndexer(Protocol):
    """Optional: an indexer that also keeps a full-text index over its pages' region text.

    Each top-level region of a page is one document of the index (BM25 over regions
    ranks pages better than BM25 over whole pages: ``retriever.search.fusion``). Queries
    come analyzed (``retriever.search.lexical.analyze``) and the index holds terms made by
    the same analyzer (``region_terms``), so every backend agrees on what matches. Without
    these methods hybrid search falls back to vectors alone.
    """

    def lexical_search(self, queries: Sequence[QueryTerms], k: int) -> list[list[RegionScore]]:
        """Per query, the top ``k`` regions by BM25 over region text, best first."""

    def page_terms(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """``key -> per top-level region, its terms joined by spaces`` for these pages."""


@runtime_checkable
class MaintainableIndexer(Protocol):
    """Optional: an indexer that can report, compact, check and vet its storage.

    ``retriever collections optimize|verify|info`` and the optimize at the end of a large
    ``index`` run (``retriever.maintenance``) use these; a backend without them simply
    has no such commands. Callers hold the collection's writer lock around ``optimize``.
    """

    def storage_stats(self) -> StorageStats:
        """Versions, fragments (segments), pages and bytes on disk, as stored now."""

    def optimize(self, keep: timedelta) -> OptimizeReport:
        """Merge small fragments, bring derived indexes up to date and remove old versions
        that no reader started within ``keep`` can still be using. Pages and search
        results do not change."""

    def verify(self) -> VerifyReport:
        """Read every page once and report what is wrong (nothing: a healthy collection)."""

    def check_readable(self) -> None:
        """A cheap check on open that the committed state can be read: raise (any error)
        when files it names are missing or unreadable."""


@runtime_checkable
class OCREngine(Protocol):
    """Finds text regions (paragraphs > lines > words) on a page image."""

    name: str

    def check_available(self) -> None:
        """Raise MissingDependencyError (with the install command) if it cannot run."""

    def recognize(self, image: Image) -> list[Region]: ...


@runtime_checkable
class Compressor(Protocol):
    """Reduces the number of vectors of a page while keeping each one's box.

    A compressor that sets ``uses_regions = True`` is called as
    ``compress(mv, regions=page_regions)`` with the page's OCR or text-layer regions
    (possibly empty), so it can keep its groups inside paragraphs; any other is called
    as ``compress(mv)``.
    """

    name: str

    def compress(self, mv: MultiVector) -> MultiVector: ...
