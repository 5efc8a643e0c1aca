"""What ``PageProducer.run`` yields: a page, the end of a document, or its failure."""

from __future__ import annotations

__all__ = ["DocumentEnd", "DocumentFailed", "Event", "PageReady", "WorkerCrashedError"]

from dataclasses import dataclass
from typing import Union

from ..errors import BadInputError
from ..types import Page
from .pagework import DocumentJob


@dataclass
class PageReady:
    """A page of ``job`` with its regions (and its image when ``needs_image``)."""

    job: DocumentJob
    page: Page


@dataclass
class DocumentEnd:
    """Every page of ``job`` was yielded (or skipped); ``page_count`` counts them all."""

    job: DocumentJob
    page_count: int


@dataclass
class DocumentFailed:
    """``job`` cannot be used; pages of it already yielded are to be dropped."""

    job: DocumentJob
    error: Exception


Event = Union[PageReady, DocumentEnd, DocumentFailed]


class WorkerCrashedError(BadInputError):
    """The worker process producing pages of this file died (a segfault in poppler...)."""

    def __init__(self, path: str, doing: str, how: str) -> None:
        super().__init__(
            path, "corrupt",
            f"the worker process died ({how}) while {doing}; poppler, tesseract or a "
            "plugin crashed on this file",
            hint="the other files went on; run with workers=0 to see where it fails",
        )
