"""Code files beside a quantized collection's segments, so no process re-derives them.

The codes of two-stage search (binary or int8, per stored vector) and the int8 codes of
each page's centroids depend only on a segment's stored vectors, and segments never
change, so they are computed once, when the segment is written, and saved beside it as
``seg-*.codes-binary.npz`` / ``seg-*.codes-int8.npz`` (plain arrays; loaded with
``allow_pickle=False``). A process that opens the collection then assembles a
generation's code index from these files instead of reading every stored vector back and
encoding it again: at 10k ColPali-shaped pages that had taken 12.9 s before the first
search of each new process, at 100k about 100 s.

The files are a derived cache, not part of a segment: a segment without one (written
before this existed, or whose file is unreadable) has its codes built from its vectors
in memory, as before, and the generation's search is the same either way.
"""

from __future__ import annotations

__all__ = ["write_codes", "write_merged_codes", "write_missing", "stored_code_index"]

import zipfile
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from retriever.search.prefilter import DEFAULT_CENTROIDS

from . import files
from .state import LiveView
from .store import Segment, code_file

#: one run of pages to assemble codes for: a segment and page rows in it, in order
Run = tuple[Segment, np.ndarray]


def _members(quantization: str, dim: int) -> dict[str, tuple[tuple[int, ...], Any, bool]]:
    """The arrays of a codes file besides ``centroid_offsets``: name -> (trailing shape,
    dtype, one row per centroid rather than per vector)."""
    if quantization == "binary":
        per_vector = {"bits": (((dim + 7) // 8,), np.uint8, False)}
    else:
        per_vector = {"values": ((dim,), np.int8, False), "scales": ((), np.float32, False)}
    return {**per_vector, "centroid_values": ((dim,), np.int8, True),
            "centroid_scales": ((), np.float32, True)}


def _centroid_counts(lengths: np.ndarray) -> np.ndarray:
    # ``page_centroids`` keeps min(m, n) centroids of a page of n vectors
    return np.minimum(lengths, DEFAULT_CENTROIDS)


def _arrays(vectors: np.ndarray, offsets: np.ndarray, quantization: str) -> dict[str, np.ndarray]:
    from retriever.search.prefilter import page_centroids
    from retriever.search.quantization import BinaryCodes, Int8Codes

    # from the stored (rounded) values, exactly as a build from the segment would see them
    vectors = np.asarray(vectors, np.float32)
    if quantization == "binary":
        out = {"bits": BinaryCodes.encode(vectors).bits}
    else:
        codes = Int8Codes.encode(vectors)
        out = {"values": codes.values, "scales": codes.scales}
    cents, cent_offsets = page_centroids(vectors, offsets, DEFAULT_CENTROIDS)
    coarse = Int8Codes.encode(cents)
    out.update(centroid_values=coarse.values, centroid_scales=coarse.scales,
               centroid_offsets=cent_offsets)
    return out


#: pages encoded at a time when a segment's codes are written (bounded memory)
_CHUNK_PAGES = 1024


def _save(path: Path, file_name: str, arrays: dict[str, np.ndarray]) -> None:
    files.atomic_write(path / file_name, lambda f: np.savez(f, **arrays))


def write_codes(path: Path, name: str, vectors: np.ndarray, offsets: np.ndarray,
                quantization: str) -> None:
    """Encode segment ``name``'s stored ``vectors`` (N, d) with page ``offsets`` (P+1,)
    and save its codes file (atomically, like every collection file)."""
    parts = []
    for lo in range(0, max(offsets.size - 1, 1), _CHUNK_PAGES):
        hi = min(lo + _CHUNK_PAGES, offsets.size - 1)
        a, b = int(offsets[lo]), int(offsets[hi])
        parts.append(_arrays(vectors[a:b], offsets[lo:hi + 1] - a, quantization))
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]
              if key != "centroid_offsets"}
    counts = np.concatenate([np.diff(p["centroid_offsets"]) for p in parts])
    joined["centroid_offsets"] = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    _save(path, code_file(name, quantization), joined)


def _load(path: Path, segment: Segment, quantization: str) -> dict[str, np.ndarray] | None:
    """The segment's code arrays, or None when its file is missing, unreadable or does
    not fit the segment."""
    try:
        with np.load(path / code_file(segment.name, quantization), allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    per_page = _centroid_counts(np.diff(segment.offsets))  # (P,) centroids per page
    cents = arrays.get("centroid_offsets")
    if cents is None or not np.array_equal(np.diff(cents), per_page):
        return None
    rows = {False: int(segment.offsets[-1]), True: int(per_page.sum())}
    dim = segment.vectors.shape[1]
    for key, (tail, _, per_centroid) in _members(quantization, dim).items():
        value = arrays.get(key)
        if value is None or value.shape != (rows[per_centroid], *tail):
            return None
    return arrays


def _assemble(path: Path, runs: Sequence[Run], quantization: str,
              dim: int) -> dict[str, np.ndarray] | None:
    """The code arrays of ``runs``' pages back to back (one file read per run), or None
    when a run's segment has no usable file. The result is allocated once and filled run
    by run, so memory stays the codes plus one file (int8 codes of 100k ColPali pages
    are 13 GB)."""
    from retriever.search.ragged import page_rows

    lengths = np.concatenate([np.diff(seg.offsets)[rows] for seg, rows in runs]
                             or [np.zeros(0, np.int64)])
    cent_counts = _centroid_counts(lengths)
    totals = {False: int(lengths.sum()), True: int(cent_counts.sum())}
    members = _members(quantization, dim)
    out = {key: np.empty((totals[per_centroid], *tail), dtype)
           for key, (tail, dtype, per_centroid) in members.items()}
    at = {False: 0, True: 0}
    for segment, rows in runs:
        arrays = _load(path, segment, quantization)
        if arrays is None:
            return None
        picks = {False: page_rows(segment.offsets, rows),
                 True: page_rows(arrays["centroid_offsets"], rows)}
        for key, (_, _, per_centroid) in members.items():
            chosen = picks[per_centroid]
            out[key][at[per_centroid]:at[per_centroid] + chosen.size] = arrays[key][chosen]
        at = {c: at[c] + picks[c].size for c in at}
    out["centroid_offsets"] = np.concatenate(([0], np.cumsum(cent_counts))).astype(np.int64)
    return out


def write_merged_codes(path: Path, name: str, spans: list[tuple[Segment, int]],
                       vectors: np.ndarray, offsets: np.ndarray, quantization: str) -> None:
    """Codes of a merged segment: its pages (``spans``: source segment and page row, in
    order) taken from their segments' code files, or encoded from ``vectors`` when any
    of those has none."""
    runs = [(group[0][0], np.array([r for _, r in group], np.int64))
            for group in (list(g) for _, g in groupby(spans, key=lambda s: s[0].name))]
    assembled = _assemble(path, runs, quantization, vectors.shape[1])
    if assembled is None:
        write_codes(path, name, vectors, offsets, quantization)
    else:
        _save(path, code_file(name, quantization), assembled)


def write_missing(path: Path, segments: list[Segment], quantization: str) -> int:
    """Write the codes file of every segment without a usable one (a collection written
    before they existed; a damaged file); -> how many were written."""
    written = 0
    for segment in segments:
        if _load(path, segment, quantization) is None:
            write_codes(path, segment.name, segment.vectors, segment.offsets, quantization)
            written += 1
    return written


def stored_code_index(view: LiveView, path: Path, quantization: str,
                      centroids: bool) -> Any | None:
    """The view's ``CodeIndex`` from its segments' code files (the live pages, in view
    order), with the centroid stage when ``centroids``; None when a segment has none."""
    from retriever.search.quantization import BinaryCodes, Int8Codes
    from retriever.search.twostage import CodeIndex

    # the view lists each segment's live pages in segment order (LiveView.build)
    if not len(view) or np.any(np.diff(view.seg) < 0):
        return None
    runs = [(segment, view.row[view.seg == g]) for g, segment in enumerate(view.segments)]
    out = _assemble(path, runs, quantization, view.dim)
    if out is None:
        return None
    if quantization == "binary":
        codes: Any = BinaryCodes(out["bits"], view.dim)
    else:
        codes = Int8Codes(out["values"], out["scales"])
    offsets = np.concatenate(([0], np.cumsum(view.counts))).astype(np.int64)
    if not centroids:
        return CodeIndex(codes, offsets)
    coarse = Int8Codes(out["centroid_values"], out["centroid_scales"])
    return CodeIndex(codes, offsets, centroid_offsets=out["centroid_offsets"],
                     coarse_codes=coarse)
