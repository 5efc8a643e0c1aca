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
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .state import LiveView
from .store import Segment, code_file


def _arrays(vectors: np.ndarray, offsets: np.ndarray, quantization: str) -> dict[str, np.ndarray]:
    from retriever.search.prefilter import DEFAULT_CENTROIDS, page_centroids
    from retriever.search.quantization import BinaryCodes, Int8Codes, encode_codes

    # from the stored (rounded) values, exactly as a build from the segment would see them
    vectors = np.asarray(vectors, np.float32)
    codes = encode_codes(quantization, vectors)
    out: dict[str, np.ndarray] = {}
    if isinstance(codes, BinaryCodes):
        out["bits"] = codes.bits
    else:
        assert isinstance(codes, Int8Codes)
        out["values"], out["scales"] = codes.values, codes.scales
    cents, cent_offsets = page_centroids(vectors, offsets, DEFAULT_CENTROIDS)
    coarse = Int8Codes.encode(cents)
    out["centroid_values"], out["centroid_scales"] = coarse.values, coarse.scales
    out["centroid_offsets"] = cent_offsets
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
    _save(path, code_file(name, quantization), _joined(parts))


def _load(path: Path, segment: Segment, quantization: str,
          members: tuple[str, ...] | None = None) -> dict[str, np.ndarray] | None:
    """The segment's code arrays (``members`` of them, default all), or None when its file
    is missing, unreadable or does not fit the segment."""
    try:
        with np.load(path / code_file(segment.name, quantization), allow_pickle=False) as z:
            arrays = {key: z[key] for key in (members or z.files)}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    main = arrays.get("bits" if quantization == "binary" else "values")
    cents, centroids = arrays.get("centroid_offsets"), arrays.get("centroid_values")
    if ((main is not None and main.shape[0] != int(segment.offsets[-1]))
            or cents is None or cents.size != segment.offsets.size
            or (centroids is not None and int(cents[-1]) != centroids.shape[0])):
        return None
    return arrays


def _pages(arrays: dict[str, np.ndarray], offsets: np.ndarray,
           rows: np.ndarray) -> dict[str, np.ndarray]:
    """The code arrays of pages ``rows`` of a segment with vector ``offsets`` (P+1,), in
    that order, their centroid offsets counted from 0."""
    from retriever.search.ragged import page_rows

    vector_rows = page_rows(offsets, rows)
    cents = arrays["centroid_offsets"]
    centroid_rows = page_rows(cents, rows)
    out = {key: value[centroid_rows if key.startswith("centroid") else vector_rows]
           for key, value in arrays.items() if key != "centroid_offsets"}
    out["centroid_offsets"] = np.concatenate(
        ([0], np.cumsum(np.diff(cents)[rows]))).astype(np.int64)
    return out


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Code arrays of consecutive page runs as one run."""
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]
           if key != "centroid_offsets"}
    cents, base = [np.zeros(1, np.int64)], 0
    for p in parts:
        cents.append(p["centroid_offsets"][1:] + base)
        base += int(p["centroid_offsets"][-1])
    out["centroid_offsets"] = np.concatenate(cents).astype(np.int64)
    return out


def write_merged_codes(path: Path, name: str, spans: list[tuple[Segment, int]],
                       vectors: np.ndarray, offsets: np.ndarray, quantization: str) -> None:
    """Codes of a merged segment: its pages (``spans``: source segment and page row, in
    order) taken from their segments' code files, or encoded from ``vectors`` when any
    of those has none."""
    loaded: dict[str, dict[str, np.ndarray] | None] = {}
    for segment, _ in spans:
        if segment.name not in loaded:
            loaded[segment.name] = _load(path, segment, quantization)
    if any(a is None for a in loaded.values()):
        write_codes(path, name, vectors, offsets, quantization)
        return
    parts = []
    for _, run in groupby(spans, key=lambda span: span[0].name):  # consecutive pages of one
        run = list(run)
        segment = run[0][0]
        arrays = loaded[segment.name]
        assert arrays is not None
        parts.append(_pages(arrays, segment.offsets, np.array([r for _, r in run], np.int64)))
    _save(path, code_file(name, quantization), _joined(parts))


def write_missing(path: Path, segments: list[Segment], quantization: str) -> int:
    """Write the codes file of every segment without a usable one (a collection written
    before they existed; a damaged file); -> how many were written."""
    written = 0
    for segment in segments:
        if _load(path, segment, quantization) is None:
            write_codes(path, segment.name, segment.vectors, segment.offsets, quantization)
            written += 1
    return written


def _member_shapes(quantization: str, dim: int) -> dict[str, tuple[tuple[int, ...], Any, bool]]:
    """Per array of a codes file: (trailing shape, dtype, per centroid rather than per
    vector)."""
    shapes: dict[str, tuple[tuple[int, ...], Any, bool]] = {}
    if quantization == "binary":
        shapes["bits"] = (((dim + 7) // 8,), np.uint8, False)
    else:
        shapes["values"] = ((dim,), np.int8, False)
        shapes["scales"] = ((), np.float32, False)
    shapes["centroid_values"] = ((dim,), np.int8, True)
    shapes["centroid_scales"] = ((), np.float32, True)
    return shapes


def stored_code_index(view: LiveView, path: Path, quantization: str,
                      centroids: bool) -> Any | None:
    """The view's ``CodeIndex`` from its segments' code files (the live pages, in view
    order), with the centroid stage when ``centroids``; None when a segment has none.

    The result is allocated once and filled a segment at a time, so memory stays the
    codes themselves plus one segment's file (int8 codes of 100k ColPali pages are 13 GB).
    """
    from retriever.search.quantization import BinaryCodes, Int8Codes
    from retriever.search.ragged import page_rows
    from retriever.search.twostage import CodeIndex

    # the view lists each segment's live pages in segment order (LiveView.build)
    if not len(view) or np.any(np.diff(view.seg) < 0):
        return None
    live_rows = [view.row[view.seg == g] for g in range(len(view.segments))]
    cent_counts = []
    for segment, rows in zip(view.segments, live_rows):  # pass 1: the small offsets
        arrays = _load(path, segment, quantization, ("centroid_offsets",))
        if arrays is None:
            return None
        cent_counts.append(np.diff(arrays["centroid_offsets"])[rows])
    per_page = np.concatenate(cent_counts)  # (P,) centroids of each live page
    cent_offsets = np.concatenate(([0], np.cumsum(per_page))).astype(np.int64)
    shapes = _member_shapes(quantization, view.dim)
    totals = {False: view.n_vectors, True: int(cent_offsets[-1])}
    out = {key: np.empty((totals[per_centroid], *tail), dtype)
           for key, (tail, dtype, per_centroid) in shapes.items()}
    at = {False: 0, True: 0}
    for segment, rows in zip(view.segments, live_rows):  # pass 2: one segment at a time
        arrays = _load(path, segment, quantization, tuple(shapes) + ("centroid_offsets",))
        if arrays is None:
            return None
        picks = {False: page_rows(segment.offsets, rows),
                 True: page_rows(arrays["centroid_offsets"], rows)}
        for key, (tail, _, per_centroid) in shapes.items():
            value = arrays[key]
            if value.shape[1:] != tail:
                return None
            chosen = picks[per_centroid]
            out[key][at[per_centroid]:at[per_centroid] + chosen.size] = value[chosen]
        at = {c: at[c] + picks[c].size for c in at}
    if quantization == "binary":
        codes: Any = BinaryCodes(out["bits"], view.dim)
    else:
        codes = Int8Codes(out["values"], out["scales"])
    offsets = np.concatenate(([0], np.cumsum(view.counts))).astype(np.int64)
    if not centroids:
        return CodeIndex(codes, offsets)
    coarse = Int8Codes(out["centroid_values"], out["centroid_scales"])
    return CodeIndex(codes, offsets, centroid_offsets=cent_offsets, coarse_codes=coarse)
