"""Distributed indexing on Ray Data: many workers encode, one coordinator commits.

``ray_index_files`` is what ``Retriever.index(..., ray=RayIndexOptions())`` (and
``retriever index --ray``) runs for the files whose content must be encoded:

* the coordinator (this process) never loads the model: one task builds the encoder on
  the cluster and reports its traits (``encoder_traits.py``), from which a new
  collection is made and an existing one checked;
* it hashes the files and plans each one with the same
  bookkeeping as a local run (``bookkeeping.plan_file``): a file already stored is not
  sent, a copy is recorded by the local pass that follows;
* Ray Data opens documents and produces their pages in tasks and encodes them in an actor
  pool, one model per actor (``ingest_stages.py``); the actors write Lance fragments
  straight into the collection's table, uncommitted;
* the coordinator commits whole documents as their fragments come in (``ledger.py``),
  each group in one Lance transaction that also deletes the versions they replace. A
  job that dies leaves every group committed so far and nothing else; a re-run skips
  those documents by content hash. A group the ledger cannot commit (a document failed
  after some of its pages were written, or a retried worker wrote pages twice) has its
  other documents encoded again in the next round, up to ``ROUNDS``.

Per-file failures are those of a local run (``ingest_stages.failure_of``). The result is
an ordinary LanceDB collection: a local ``retriever search`` reads it.
"""

from __future__ import annotations

__all__ = ["ROUNDS", "RayIndexOptions", "RayIndexResult", "ray_index_files"]

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..bookkeeping import Book, FilePlan, plan_file, stored_paths
from ..errors import MissingDependencyError, RetrieverError, UsageError
from ..ingest import content_hash
from ..ingest.pagework import ProducerSettings
from ..ingest.producer import RANGE_PAGES
from ..indexing import record_outcome
from ..interrupts import deferred_interrupt
from ..protocols import Indexer, OCREngine
from ..types import FileFailure
from .ingest_stages import (
    EncoderRecipe,
    PageEncoder,
    no_text_failure,
    open_ranges,
    produce_pages,
)
from .encoder_traits import EncoderTraits, traits_on_cluster
from .ledger import CommitGroup, Ledger
from .cluster import import_ray, join_ray

log = logging.getLogger(__name__)

#: rounds of encoding for documents whose group could not be committed
ROUNDS = 3


@dataclass(frozen=True)
class RayIndexOptions:
    """How to run a distributed indexing job.

    ``address``: the Ray cluster (None: the one this process already joined, else a new
    local one); ``encoders``: encoder actors (default: one per GPU, else one per two
    CPUs); ``batch_pages``: pages per encoder call, which is also the most pages in one
    fragment; ``commit_pages``: pages gathered before a commit (a crash loses at most
    about this many encoded pages); ``setup``: run first in every worker (register a
    plugin the cluster's environment does not install).
    """

    address: str | None = None
    encoders: int | None = None
    batch_pages: int = 32
    commit_pages: int = 512
    setup: Callable[[], None] | None = None


def _quiet_ray_data() -> None:
    """Ray Data's INFO lines on every job, and its warning that the progress bars we turn
    off (ours go to stderr through the progress callback) are off, stay out of stderr."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def _encoders(ray: Any, options: RayIndexOptions) -> tuple[int, float]:
    """Encoder actors and the GPUs each takes."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if options.encoders is not None:
        if options.encoders < 1:
            raise UsageError(f"encoders must be at least 1, got {options.encoders}")
        return options.encoders, (1.0 if gpus else 0.0)
    if gpus:
        return gpus, 1.0
    return max(1, int(resources.get("CPU", 1)) // 2), 0.0


def _plans(book: Book, files: Sequence[Path], force: bool
           ) -> tuple[list[tuple[Path, FilePlan]], list[Path]]:
    """Files to encode on the cluster (one per content) and the rest, for the local pass
    (unchanged, copies, unreadable files: none of them is encoded)."""
    remote: list[tuple[Path, FilePlan]] = []
    local: list[Path] = []
    planned: set[str] = set()
    for path in files:
        try:
            doc_id = content_hash(path)
        except RetrieverError:
            local.append(path)  # the local pass reports it as a local run would
            continue
        plan = plan_file(book, doc_id, str(path.resolve()), force=force)
        if plan.encode and doc_id not in planned:
            planned.add(doc_id)
            remote.append((path, plan))
        else:
            local.append(path)
    return remote, local


def _dataset(ray: Any, work: Sequence[tuple[Path, FilePlan]], *, settings: ProducerSettings,
             recipe: EncoderRecipe, writer: Any, options: RayIndexOptions,
             encoders: tuple[int, float]) -> Any:
    data = ray.data
    context = data.DataContext.get_current()
    context.enable_progress_bars = False
    _quiet_ray_data()
    items = [{"doc_id": plan.doc_id, "source": plan.source,
              "paths": list(plan.paths[plan.doc_id]), "path": str(path)}
             for path, plan in work]
    actors, gpus = encoders
    return (data.from_items(items)
            .flat_map(partial(open_ranges, settings=settings, range_pages=RANGE_PAGES,
                              setup=options.setup))
            .flat_map(partial(produce_pages, settings=settings, setup=options.setup))
            .map_batches(PageEncoder, fn_constructor_args=(recipe, writer, options.setup),
                         batch_size=options.batch_pages, num_gpus=gpus,
                         compute=data.ActorPoolStrategy(size=actors)))


@dataclass
class RayIndexResult:
    """What the coordinator's local pass needs after the cluster's part of the job: the
    collection, the files left to it (none needs encoding) and the encoder's traits to
    run it with (``None``: nothing reached the cluster, so nothing learned them)."""

    indexer: Indexer
    local: list[Path]
    traits: EncoderTraits | None


def ray_index_files(open_indexer: Callable[[EncoderTraits | None], Indexer], exists: bool,
                    files: Sequence[Path], encoder: tuple[str, Mapping[str, Any]],
                    ocr: OCREngine | None, report: Any, *, max_pixels: int, force: bool,
                    options: RayIndexOptions,
                    progress: Callable[[str, int, int, str], None] | None = None
                    ) -> RayIndexResult:
    """Encode and commit ``files`` on Ray, adding to ``report``.

    ``encoder``: the registry name and options the collection's encoder is made with;
    it is built on the cluster only, never here. ``open_indexer(traits)`` opens the
    collection (``exists``) or creates it with the traits' identity, and checks an
    existing one's manifest against them when given. A re-run that finds nothing to
    encode starts no cluster."""
    ray: Any = None
    started = False
    traits: EncoderTraits | None = None
    try:
        indexer = open_indexer(None) if exists else None
        book = Book(stored_paths(indexer) if indexer is not None else {})  # new: empty
        work, local = _plans(book, files, force)
        if work or indexer is None:  # the encoder's traits are needed: learn them there
            ray, started = _start(options)
            recipe = EncoderRecipe(encoder[0], dict(encoder[1]))
            traits = traits_on_cluster(ray, recipe, options.setup, _encoders(ray, options)[1])
            indexer = open_indexer(traits)  # made with its identity, or checked against it
        _check_backend(indexer)
        if work:
            recipe = EncoderRecipe(encoder[0], dict(encoder[1]), indexer.manifest.compressor)
            _run_rounds(ray, indexer, book, work, recipe, traits, ocr, report,
                        max_pixels=max_pixels, force=force, options=options,
                        progress=progress)
        return RayIndexResult(indexer, local, traits)
    finally:
        if started:
            ray.shutdown()


def _start(options: RayIndexOptions) -> tuple[Any, bool]:
    ray = import_ray("distributed indexing runs on Ray Data", data=True)
    return ray, join_ray(ray, options.address)


def _check_backend(indexer: Indexer) -> None:
    for method in ("fragment_writer", "commit_fragments"):
        if not hasattr(indexer, method):
            raise UsageError(f"--ray writes Lance fragments: the "
                             f"{indexer.manifest.indexer} backend cannot take them",
                             hint="index into a LanceDB collection (the default)")


def _run_rounds(ray: Any, indexer: Indexer, book: Book, work: list[tuple[Path, FilePlan]],
                recipe: EncoderRecipe, traits: EncoderTraits, ocr: OCREngine | None,
                report: Any, *, max_pixels: int, force: bool, options: RayIndexOptions,
                progress: Callable[[str, int, int, str], None] | None) -> None:
    """Run the job until every document is committed, or ``ROUNDS`` rounds are spent."""
    settings = ProducerSettings(traits.dpi, max_pixels, traits.needs_image, ocr)
    no_text = (partial(no_text_failure, encoder_name=traits.name)
               if traits.needs_regions else None)
    encoders = _encoders(ray, options)
    writer = indexer.fragment_writer()  # type: ignore[attr-defined]
    for _ in range(ROUNDS):
        ledger = Ledger([plan.doc_id for _, plan in work], no_text)
        dataset = _dataset(ray, work, settings=settings, recipe=recipe, writer=writer,
                           options=options, encoders=encoders)
        committed_pages = 0
        for row in dataset.iter_rows():
            ledger.add(row["token"])
            if ledger.fatal is not None:
                raise MissingDependencyError(ledger.fatal[0], hint=ledger.fatal[1] or None)
            if progress:
                progress("pages", ledger.pages_written(), 0, "")
            if ledger.pages_written() - committed_pages >= options.commit_pages:
                committed_pages = ledger.pages_written()
                _commit_ready(indexer, book, ledger, work, force, report)
        _commit_ready(indexer, book, ledger, work, force, report)
        report.failed.extend(ledger.failed[plan.doc_id] for _, plan in work
                             if plan.doc_id in ledger.failed)
        again = set(ledger.unfinished())
        work = [(path, plan) for path, plan in work if plan.doc_id in again]
        if not work:
            return
        log.info("encoding %d documents again: their pages could not be committed "
                 "whole", len(work))
    for path, plan in work:  # every round left them uncommitted
        report.failed.append(FileFailure(plan.source, "error",
                                         f"its pages could not be committed whole after "
                                         f"{ROUNDS} rounds"))


def _commit_ready(indexer: Indexer, book: Book, ledger: Ledger,
                  work: Sequence[tuple[Path, FilePlan]], force: bool, report: Any) -> None:
    sources = {plan.doc_id: plan.source for _, plan in work}
    for group in ledger.ready():
        _commit_group(indexer, book, group, sources, force, report)
        ledger.commit_done(group)


def _commit_group(indexer: Indexer, book: Book, group: CommitGroup, sources: dict[str, str],
                  force: bool, report: Any) -> None:
    """One commit: the group's fragments, and what its files' plans delete and relink.

    Plans are made again now, against the collection as it is after the groups
    committed before (on a copy of the book, one document after the other), so groups
    can commit in any order and still keep one document per path."""
    after = Book(book.paths)
    plans: list[FilePlan] = []
    for doc_id in group.docs:
        plan = plan_file(after, doc_id, sources[doc_id], force=force)
        for gone in plan.delete:
            after.set(gone, [])
        for doc, paths in plan.paths.items():
            after.set(doc, paths)
        plans.append(plan)
    new = set(group.docs)
    delete = sorted({d for plan in plans for d in plan.delete})  # --force: the old version too
    relink = {d: after.paths[d] for plan in plans for d in plan.paths
              if d not in new and d in after.paths}
    with deferred_interrupt():  # the report must say exactly what was committed
        indexer.commit_fragments(group.fragments, delete=delete,  # type: ignore[attr-defined]
                                 paths=relink)
        book.paths, book.owner = after.paths, after.owner
        for plan in plans:
            record_outcome(report, plan, group.pages[plan.doc_id])
            report.encoded_pages += group.pages[plan.doc_id]
