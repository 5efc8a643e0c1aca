"""ColVision encoders through transformers' ColPaliForRetrieval / ColQwen2ForRetrieval.

Pages run through the shared EncodingEngine (device, dtype, batching, overlap of page
preparation with the model); queries too, so both follow the engine's device and dtype.
Each page yields one L2-normalized 128-d vector per real token: image tokens carry the
box of the page cell they saw, prompt and special tokens the whole page (see layout.py).
Queries go through the processor's own ``process_queries`` (its prefix and the query
augmentation tokens the models were trained with).
"""

from __future__ import annotations

__all__ = ["ColVisionEncoder", "DEFAULT_DPI"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from retriever.engine import EncodingEngine, PreparedBatch
from retriever.errors import MissingDependencyError, RetrieverError, UsageError
from retriever.manifest import EncoderIdentity
from retriever.model_source import hub_source, resolve_model_source, source_revision
from retriever.types import WHOLE_PAGE, MultiVector, Page

from . import MODELS, catalogue
from .families import Family, family_for
from .layout import TokenLayout, token_layout

#: a letter page at 120 dpi is 1020 x 1320 px: more than either family's input (ColPali
#: stretches to 448 px, ColQwen2 caps the area), so rendering finer only costs time
DEFAULT_DPI = 120
_PAGE_BATCH = 4
_QUERY_BATCH = 32


def _import_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"ColPali encoders need torch and transformers>=5 ({exc.name} is missing)",
            hint="pip install 'vision-retriever[colpali]'") from exc
    if int(transformers.__version__.split(".")[0]) < 5:
        raise MissingDependencyError(
            f"ColPali encoders need transformers>=5, found {transformers.__version__}",
            hint="pip install -U 'transformers>=5'")
    return torch, transformers


class ColVisionEncoder:
    """A late-interaction encoder; ``name`` is one of ``plugins.colpali.MODELS``.

    ``model`` is a local directory, ``hf:ORG/NAME`` or a name / hub id of ``MODELS``
    (default: the name's hub id). ``device`` / ``dtype`` / ``batch_size`` configure the
    EncodingEngine. ``trust_remote_code`` stays off unless asked for (a real bool: options
    are parsed by the spec's declarations); it is not stored in the collection's manifest,
    so reopening such a collection needs it passed again.
    """

    kind = "multi"
    needs_image = True
    needs_regions = False
    dpi = DEFAULT_DPI

    def __init__(self, name: str, *, model: str | None = None, device: str = "auto",
                 dtype: str = "auto", batch_size: int | None = None,
                 trust_remote_code: bool = False) -> None:
        entry = MODELS.get(name)
        if entry is None:
            raise UsageError(f"unknown ColVision encoder {name!r}",
                             hint=f"available: {', '.join(sorted(MODELS))}")
        _, transformers = _import_stack()
        transformers.utils.logging.disable_progress_bar()  # our own progress goes to stderr
        engine = EncodingEngine(device=device, dtype=dtype, batch_size=batch_size)
        family = family_for(entry.family)
        if not isinstance(trust_remote_code, bool):  # bool("false") is True: never guess
            raise UsageError(f"{name}: trust_remote_code must be true or false, "
                             f"not {trust_remote_code!r}")
        location = str(model) if model else entry.hub_id
        source = resolve_model_source(model, catalogue()) if model else hub_source(entry.hub_id)
        self.trust_remote_code = trust_remote_code  # what from_pretrained is told
        options = {"local_files_only": source.local_files_only,
                   "trust_remote_code": trust_remote_code}
        try:
            # the config first: a checkpoint of another family would otherwise load with
            # mismatched (randomly initialized) weights and only a warning
            config = transformers.AutoConfig.from_pretrained(source.location, **options)
            if config.model_type != family.model_type:
                raise UsageError(
                    f"{location!r} holds a {config.model_type!r} model, but {name} needs a "
                    f"{family.model_type!r} checkpoint",
                    hint="pick the encoder name that matches the weights")
            processor = getattr(transformers, family.processor_class).from_pretrained(
                source.location, **options)
            net = getattr(transformers, family.model_class).from_pretrained(
                source.location, config=config, dtype=engine.dtype, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise RetrieverError(
                f"cannot load {name} from {location!r}: {exc}",
                hint="pass model=<local directory> with transformers-native weights (config, "
                     "weights, processor); no model hub is reachable offline") from exc
        revision = source_revision(source, getattr(config, "_commit_hash", None))
        # a stable id: the hub id it came from, else (local weights) the name's checkpoint;
        # the fingerprint tells different weights apart wherever they lie
        self._setup(name, family, net, processor, engine,
                    model_id=source.hub_id or entry.hub_id, revision=revision,
                    options={"model": str(model)} if model else {})

    @classmethod
    def from_loaded(cls, name: str, model: Any, processor: Any, engine: EncodingEngine, *,
                    revision: str = "in-memory") -> ColVisionEncoder:
        """Wrap a model and processor already in memory (benchmarks with random weights)."""
        entry = MODELS.get(name)
        if entry is None:
            raise UsageError(f"unknown ColVision encoder {name!r}")
        encoder = cls.__new__(cls)
        encoder._setup(name, family_for(entry.family), model, processor, engine,
                       model_id=f"{entry.hub_id} (in memory)", revision=revision, options={})
        return encoder

    def _setup(self, name: str, family: Family, model: Any, processor: Any,
               engine: EncodingEngine, *, model_id: str, revision: str,
               options: dict[str, Any]) -> None:
        torch, _ = _import_stack()
        self._torch = torch
        self.name = name
        self.engine = engine
        self.model = model.eval().to(engine.device)
        self.processor = processor
        self._family = family
        family.check(model, processor)
        self.dim = int(model.config.embedding_dim)
        self._image_token_id = int(processor.image_token_id)
        self._model_id = model_id
        self._revision = revision
        self._options = options

    @property
    def identity(self) -> EncoderIdentity:
        return EncoderIdentity(name=self.name, model_id=self._model_id, revision=self._revision,
                               dim=self.dim, kind=self.kind, options=dict(self._options))

    # -- pages --------------------------------------------------------------------------

    def prepare_pages(self, pages: list[Page]) -> PreparedBatch:
        """Processor outputs (CPU tensors) and each page's token layout; no model call."""
        images = []
        for page in pages:
            if page.image is None:
                raise RetrieverError(
                    f"{page.source} page {page.page_number}: no image; {self.name} reads "
                    "the rendered page")
            images.append(page.image.convert("RGB"))
        features = self.processor.process_images(images)
        tensors = {key: features[key] for key in self._family.page_inputs if key in features}
        ids = features["input_ids"].numpy()  # (b, seq)
        mask = features["attention_mask"].numpy()  # (b, seq)
        meta = [token_layout(ids[i], mask[i], self._image_token_id,
                             self._family.page_cells(features, i)) for i in range(len(pages))]
        return PreparedBatch(tensors, meta)

    def forward(self, batch: PreparedBatch) -> list[MultiVector]:
        """Embeddings of a prepared batch (on the engine's device) -> one MultiVector each."""
        vectors = self._embed(batch.tensors)  # (b, seq, dim)
        return [MultiVector(vectors[i, layout.keep], layout.boxes)
                for i, layout in enumerate(batch.meta)]

    @property
    def page_batch(self) -> int:
        """Pages per ``encode_pages`` call: the engine's batch (``--batch-size``)."""
        return self.engine.batch_for(_PAGE_BATCH)

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]:
        cost = self._family.page_cost
        return self.engine.run(list(pages), self.prepare_pages, self.forward,
                               size_of=lambda p: cost(p.width, p.height),
                               default_batch_size=_PAGE_BATCH)

    # -- queries ------------------------------------------------------------------------

    def _prepare_queries(self, texts: list[str]) -> PreparedBatch:
        features = self.processor.process_queries(texts)
        mask = features["attention_mask"].numpy()  # (b, seq)
        whole = np.asarray([WHOLE_PAGE], np.float32)
        meta = []
        for row in mask:
            keep = np.flatnonzero(row)  # padding dropped; augmentation tokens kept
            meta.append(TokenLayout(keep, np.repeat(whole, keep.size, axis=0)))
        tensors = {key: features[key] for key in self._family.query_inputs if key in features}
        return PreparedBatch(tensors, meta)

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        return self.engine.run([str(t) for t in texts], self._prepare_queries, self.forward,
                               size_of=len, default_batch_size=_QUERY_BATCH)

    # -- the model ----------------------------------------------------------------------

    def _embed(self, tensors: dict[str, Any]) -> np.ndarray:
        torch = self._torch
        out = self.model(**tensors).embeddings  # (b, seq, dim), normalized in model dtype
        # normalize again in float32: bf16 rounding leaves norms off by up to ~1e-2
        out = torch.nn.functional.normalize(out.float(), dim=-1)  # (b, seq, dim)
        return out.cpu().numpy()
