"""CLIP and SigLIP page/query encoders through transformers, batched by the engine.

One vector per page (the pooled, projected image embedding, box = whole page) and one per
query. With ``patches=True`` a page also gets one vector per ViT patch, each boxed by the
part of the ORIGINAL page it saw (see ``towers`` for how patches reach the joint space
and ``layout`` for the boxes).
"""

from __future__ import annotations

__all__ = ["CLIPEncoder"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from retriever.engine import EncodingEngine, PreparedBatch, resolve_flag
from retriever.errors import MissingDependencyError, RetrieverError, UsageError
from retriever.manifest import EncoderIdentity
from retriever.model_source import resolve_model_source, source_revision
from retriever.types import WHOLE_PAGE, MultiVector, Page

from .catalog import CATALOG, family_of
from .layout import ProcessorGeometry
from .towers import Family, family_of_model, image_embeddings, text_embeddings

_WHOLE = np.asarray([WHOLE_PAGE], np.float32)  # (1, 4)


def _transformers() -> Any:
    try:
        import torch  # noqa: F401 - checked here so the error names the extra to install
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"CLIP/SigLIP encoders need torch and transformers ({exc.name} is missing)",
            hint="pip install 'vision-retriever[clip]'") from exc
    return transformers


_PAGE_BATCH = 8  # pages per forward pass unless --batch-size says (x4 on a GPU)


class CLIPEncoder:
    """Single-vector (or, with patches, multi-vector) CLIP/SigLIP encoder."""

    needs_image = True
    needs_regions = False
    dpi = 100  # a ViT sees 224-384 px; more resolution only costs rasterization time

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str = "clip/vit-b-16",
        default_model: str | None = None,
        patches: bool | str = False,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | str | None = None,
        trust_remote_code: bool | str = False,
    ) -> None:
        transformers = _transformers()
        transformers.utils.logging.disable_progress_bar()  # our own progress goes to stderr
        self.name = name
        self.patches = resolve_flag(patches, "patches")
        self.kind = "multi" if self.patches else "single"
        location = model or (f"hf:{default_model}" if default_model else None)
        if not location:
            raise UsageError(f"{name}: no model given",
                             hint="pass model=<local dir or hf:ORG/NAME>")
        self._engine = EncodingEngine(device=device, dtype=dtype,
                                      batch_size=None if batch_size is None else int(batch_size))
        source = resolve_model_source(location, CATALOG)
        options = {"local_files_only": source.local_files_only,
                   "trust_remote_code": resolve_flag(trust_remote_code, "trust_remote_code")}
        try:
            processor = transformers.AutoProcessor.from_pretrained(source.location, **options)
            self._model = transformers.AutoModel.from_pretrained(source.location, **options)
            self._image_processor = getattr(processor, "image_processor", None) or \
                transformers.AutoImageProcessor.from_pretrained(source.location, **options)
            self._tokenizer = getattr(processor, "tokenizer", None) or \
                transformers.AutoTokenizer.from_pretrained(source.location, **options)
        except (OSError, ValueError, KeyError) as exc:  # missing files, unknown configs
            raise RetrieverError(
                f"cannot load {name} model {location!r}: {exc}",
                hint="pass model=<local dir>; no model hub is reachable offline") from exc
        self.family: Family = family_of_model(self._model)
        if self.family != family_of(name):
            raise UsageError(f"{name} expects a {family_of(name)} checkpoint, "
                             f"{location!r} holds a {self.family} model",
                             hint=f"use a {self.family}/... encoder name for it")
        self._model.eval().to(self._engine.device, dtype=self._engine.dtype)
        config = self._model.config
        self.dim = int(config.projection_dim if self.family == "clip"
                       else config.vision_config.hidden_size)
        self._patch = int(config.vision_config.patch_size)
        # CLIP pools the EOS token (pad to the longest); SigLIP pools the last position and
        # was trained on texts padded to its full length, so it must see them that way.
        self._text_length = int(config.text_config.max_position_embeddings)
        self._pad = "longest" if self.family == "clip" else "max_length"
        self._geometry = ProcessorGeometry.of(self._image_processor) if self.patches else None
        # a stable id: the hub id it came from, else (local weights) the name's checkpoint;
        # the fingerprint tells different weights apart wherever they lie
        self._model_id = source.hub_id or default_model or CATALOG.get(name, name)
        self._revision = source_revision(source, getattr(config, "_commit_hash", None))
        self._options: dict[str, Any] = {} if model is None else {"model": str(model)}
        if self.patches:
            self._options["patches"] = True

    @property
    def engine(self) -> EncodingEngine:
        return self._engine

    @property
    def identity(self) -> EncoderIdentity:
        # device, dtype and batch size are left out: they do not change which vectors
        # come out, and a collection built on a GPU must reopen on a CPU-only machine.
        suffix = "+patches" if self.patches else ""
        return EncoderIdentity(name=self.name, model_id=self._model_id,
                               revision=self._revision + suffix, dim=self.dim, kind=self.kind,
                               options=dict(self._options))

    # -- pages ------------------------------------------------------------------------

    def _prepare_pages(self, pages: list[Page]) -> PreparedBatch:
        images = []
        for page in pages:
            if page.image is None:
                raise RetrieverError(f"page {page.key} of {page.source} has no image to encode")
            images.append(page.image.convert("RGB"))
        pixels = self._image_processor(images=images, return_tensors="pt")["pixel_values"]
        meta: list[Any] = [None] * len(pages)
        if self._geometry is not None:
            _, _, input_h, input_w = pixels.shape  # (b, 3, H, W)
            meta = [self._geometry.patch_boxes(im.width, im.height, input_h, input_w, self._patch)
                    for im in images]
        return PreparedBatch({"pixel_values": pixels}, meta)

    def _forward_pages(self, batch: PreparedBatch) -> list[MultiVector]:
        import torch

        pooled, tokens = image_embeddings(self._model, self.family,
                                          batch.tensors["pixel_values"], self.patches)
        pooled = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()  # (b, d)
        if tokens is None:
            return [MultiVector(pooled[i:i + 1], _WHOLE) for i in range(len(pooled))]
        tokens = torch.nn.functional.normalize(tokens.float(), dim=-1).cpu().numpy()  # (b, n, d)
        out = []
        for i, (boxes, keep) in enumerate(batch.meta):
            if tokens.shape[1] != len(keep):
                raise RetrieverError(f"{self.name}: {tokens.shape[1]} patch tokens for a "
                                     f"grid of {len(keep)} cells")
            vectors = np.concatenate([pooled[i:i + 1], tokens[i][keep]])  # (1 + n_kept, d)
            out.append(MultiVector(vectors, np.concatenate([_WHOLE, boxes[keep]])))
        return out

    @property
    def page_batch(self) -> int:
        """Pages per ``encode_pages`` call: the engine's batch (``--batch-size``)."""
        return self._engine.batch_for(_PAGE_BATCH)

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]:
        return self._engine.run(list(pages), self._prepare_pages, self._forward_pages,
                                default_batch_size=_PAGE_BATCH)

    # -- queries ----------------------------------------------------------------------

    def _prepare_texts(self, texts: list[str]) -> PreparedBatch:
        encoded = self._tokenizer(texts, padding=self._pad, truncation=True,
                                  max_length=self._text_length, return_tensors="pt")
        tensors = {k: encoded[k] for k in ("input_ids", "attention_mask") if k in encoded}
        return PreparedBatch(tensors, [None] * len(texts))

    def _forward_texts(self, batch: PreparedBatch) -> list[MultiVector]:
        import torch

        vectors = text_embeddings(self._model, batch.tensors)  # (b, d)
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
        return [MultiVector(vectors[i:i + 1], _WHOLE) for i in range(len(vectors))]

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        texts = [t.strip() for t in texts]
        # Sorting by length keeps CLIP's padding (wasted compute) low inside each batch.
        return self._engine.run(texts, self._prepare_texts, self._forward_texts,
                                size_of=len, default_batch_size=64)
