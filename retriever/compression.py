"""Token compression: fewer vectors per page, each keeping a box and a member count.

A compressor (``protocols.Compressor``, registered through ``register_compressors`` like
any plugin) runs after the encoder and before the indexer, on document pages only:
queries are never compressed, MaxSim compares them with whatever the page kept. A
collection is built with one compressor or none, recorded in its manifest as
``NAME:FACTOR`` (``pool:3``); asking a built collection for another is refused, since
its stored vectors were shaped by the first.

``region_of`` tells a compressor which of the page's paragraphs each vector lies in, for
one that declares ``uses_regions``. ``merged`` is the one way a compressor turns groups of
vectors into vectors: the count-weighted mean of each group (re-normalized), the union of
its boxes and the sum of its counts, so grounding still knows where each vector came from
and how much of the page it stands for.
"""

from __future__ import annotations

__all__ = ["GLOBAL_AREA", "parse_compress", "open_compressor", "merged", "is_local",
           "region_of", "check_compressed", "compress_all", "batch_compressor",
           "check_compressor"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import RetrieverError, UsageError
from .protocols import Compressor
from .types import MultiVector, Region

#: a vector whose box covers this much of the page is a page-level (global) vector: a
#: compressor keeps it as it is (it says nothing about where, and merging it with patch
#: vectors would stretch their box over the whole page)
GLOBAL_AREA = 0.98


def parse_compress(text: str) -> tuple[str, dict[str, str]]:
    """``"pool:3,within_regions=false"`` -> ``("pool", {"factor": "3",
    "within_regions": "false"})``; ``"merge"`` -> ``("merge", {})``."""
    head, *pairs = text.split(",")
    name, sep, factor = head.strip().partition(":")
    if not name or (sep and not factor.strip()):
        raise UsageError(f"--compress {text!r}: expected NAME[:FACTOR][,KEY=VALUE...]",
                         hint="e.g. --compress pool:3 (see retriever plugins list)")
    options = {"factor": factor.strip()} if sep else {}
    for pair in pairs:
        key, eq, value = (part.strip() for part in pair.partition("="))
        if not eq or not key:
            raise UsageError(f"--compress {text!r}: {pair.strip()!r} is not KEY=VALUE",
                             hint="e.g. --compress pool:3,within_regions=false")
        if key in options:
            raise UsageError(f"--compress {text!r}: {key} is given twice")
        options[key] = value
    return name, options


def _spelled(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _effective(spec, given: dict[str, str], *, recorded: bool) -> dict[str, Any]:
    """Every option the compressor of ``spec`` runs with, parsed: ``given``, the
    ``legacy`` value of each build option a manifest's spelling (``recorded``) leaves out,
    then the defaults."""
    options = spec.reopen_options(given) if recorded else given
    return spec.parse_options({**spec.option_defaults(), **options})


def open_compressor(text: str, *, recorded: bool = False) -> tuple[str, Compressor]:
    """The compressor ``text`` names and its canonical spelling for the manifest.

    The canonical spelling is ``NAME[:FACTOR]`` (the factor wherever the compressor
    declares one, chosen or default) followed by ``,KEY=VALUE`` for each other option that
    differs from what a collection recording no value was built with (the option's
    ``legacy``, else its default): the manifest's spelling opens the same compressor again.
    ``recorded``: ``text`` comes from a manifest, so options it leaves out take their
    ``legacy`` value (the collection predates them).
    """
    from .plugin_host import get_registry

    name, given = parse_compress(text)
    spec = get_registry().get("compressor", name)
    effective = _effective(spec, given, recorded=recorded)
    compressor = spec.create(**effective)
    declared = {o.name: o for o in spec.options or ()}
    spelling = name
    if "factor" in declared:
        spelling += f":{_spelled(effective['factor'])}"
    for key in sorted(effective):
        option = declared.get(key)
        if option is None:  # an undeclared compressor: only what was asked for
            spelling += f",{key}={_spelled(effective[key])}"
        elif key != "factor" and effective[key] != (
                option.legacy if option.legacy is not None else option.default):
            spelling += f",{key}={_spelled(effective[key])}"
    return spelling, compressor


def is_local(boxes: np.ndarray) -> np.ndarray:
    """(n,) bool: vectors whose box is a part of the page, not (nearly) all of it."""
    boxes = np.asarray(boxes, np.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return area < GLOBAL_AREA


def region_of(boxes: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """(n,) index into ``regions`` of the one that overlaps each box (n, 4) the most;
    -1 where none does.

    Overlap rather than the box's centre, so that a vector whose box lies on a paragraph's
    edge (a line box equal to its paragraph's) is not flipped by a float's rounding.
    """
    boxes = np.asarray(boxes, np.float64)
    if not len(regions) or not len(boxes):
        return np.full(len(boxes), -1, np.int64)
    areas = np.asarray([r.bbox for r in regions], np.float64)  # (r, 4)
    width = (np.minimum(boxes[:, None, 2], areas[None, :, 2])
             - np.maximum(boxes[:, None, 0], areas[None, :, 0]))  # (n, r)
    height = (np.minimum(boxes[:, None, 3], areas[None, :, 3])
              - np.maximum(boxes[:, None, 1], areas[None, :, 1]))
    overlap = np.clip(width, 0, None) * np.clip(height, 0, None)
    best = overlap.argmax(axis=1)
    return np.where(overlap[np.arange(len(boxes)), best] > 0, best, -1).astype(np.int64)


def merged(mv: MultiVector, labels: np.ndarray) -> MultiVector:
    """One vector per label of ``labels`` (n,) ints: count-weighted mean re-normalized,
    union box, summed count; groups ordered by their first member (reading order kept).

    A label below 0 keeps that vector on its own (a global vector, say).
    """
    labels = np.asarray(labels, np.int64)
    if labels.shape != (mv.n,):
        raise RetrieverError(f"compressor labels: expected ({mv.n},), got {labels.shape}")
    if mv.n == 0:
        return mv
    # vectors left alone get labels of their own, after every real group
    alone = labels < 0
    labels = labels.copy()
    labels[alone] = labels.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of their first member
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group = rank[inverse]  # (n,) group index in reading order
    g = uniq.size
    weights = mv.weights()  # (n,)
    vectors = np.zeros((g, mv.dim), np.float32)  # (g, d)
    np.add.at(vectors, group, mv.vectors.astype(np.float32) * weights[:, None])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # opposite vectors can cancel out: keep the group's heaviest member then
    dead = norms[:, 0] < 1e-6
    if dead.any():
        for gi in np.flatnonzero(dead):
            members = np.flatnonzero(group == gi)
            vectors[gi] = mv.vectors[members[np.argmax(weights[members])]]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= norms
    boxes = np.empty((g, 4), np.float32)  # (g, 4): union of the members' boxes
    boxes[:, :2] = np.inf
    boxes[:, 2:] = -np.inf
    np.minimum.at(boxes[:, 0], group, mv.boxes[:, 0])
    np.minimum.at(boxes[:, 1], group, mv.boxes[:, 1])
    np.maximum.at(boxes[:, 2], group, mv.boxes[:, 2])
    np.maximum.at(boxes[:, 3], group, mv.boxes[:, 3])
    counts = np.bincount(group, weights=weights, minlength=g).round().astype(np.int32)
    return MultiVector(vectors.astype(mv.vectors.dtype, copy=False), boxes,
                       check_norm=False, counts=counts)


def check_compressed(name: str, before: MultiVector, after: object) -> MultiVector:
    """A compressor's result, checked: a MultiVector of the same dimension, no more
    vectors than before, counts summing to what it was given (a third-party compressor
    that breaks this fails here, naming itself, rather than corrupting a collection)."""
    if not isinstance(after, MultiVector):
        raise RetrieverError(f"compressor {name!r} returned {type(after).__name__}, "
                             "not a MultiVector")
    if after.n > before.n or (before.n and after.dim != before.dim):
        raise RetrieverError(f"compressor {name!r} turned {before.n}x{before.dim} vectors "
                             f"into {after.n}x{after.dim}")
    if int(after.weights().sum()) != int(round(before.weights().sum())):
        raise RetrieverError(f"compressor {name!r}: counts sum to {int(after.weights().sum())}"
                             f", but it was given {int(round(before.weights().sum()))} vectors")
    return after


def compress_all(name: str, compressor: Compressor, pages: Sequence[MultiVector],
                 regions: Sequence[Sequence[Region]] | None = None) -> list[MultiVector]:
    """Every page of one encoder batch through ``compressor``, each result checked.

    ``regions`` (one list per page) reach only a compressor that declares
    ``uses_regions``, so one written against the plain ``compress(mv)`` keeps working.
    """
    if regions is None or not getattr(compressor, "uses_regions", False):
        return [check_compressed(name, mv, compressor.compress(mv)) for mv in pages]
    if len(regions) != len(pages):
        raise RetrieverError(f"compressor {name!r}: {len(pages)} pages but "
                             f"{len(regions)} region lists")
    return [check_compressed(name, mv, compressor.compress(mv, regions=page_regions))
            for mv, page_regions in zip(pages, regions)]


def batch_compressor(stored: str | None):
    """The ``pipeline.Compress`` of a collection whose manifest records ``stored``."""
    if stored is None:
        return None
    from functools import partial

    name, compressor = open_compressor(stored, recorded=True)
    return partial(compress_all, name, compressor)


def check_compressor(stored: str | None, asked: str | None, collection: str) -> None:
    """Raise UsageError when ``asked`` (``NAME[:FACTOR][,KEY=VALUE...]``) is not what the
    collection was built with: its stored vectors were shaped by that compressor (or by
    none). Options ``asked`` leaves out are not compared, so ``pool:3`` matches a
    collection built with ``pool:3`` by an earlier version, before pool had more options."""
    if asked is None:
        return
    from .plugin_host import get_registry

    name, given = parse_compress(asked)
    spec = get_registry().get("compressor", name)
    asked_options = spec.parse_options(given)  # a bad option is its own error, first
    same = False
    if stored is not None and parse_compress(stored)[0] == name:
        built_options = _effective(spec, parse_compress(stored)[1], recorded=True)
        same = all(built_options.get(k) == v for k, v in asked_options.items())
    if not same:
        built = f"compressor {stored}" if stored else "no compressor"
        wanted = ",".join(part.strip() for part in asked.split(","))
        raise UsageError(f"collection {collection!r} was built with {built}, not {wanted}",
                         hint="a collection keeps the compressor it was created with; "
                              "index into a new collection (--collection) to change it")
