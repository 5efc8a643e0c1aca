"""The sentence model on torch: mean-pooled, L2-normalized embeddings, batched by length.

Imported only when torch is really needed (encoding pages, exporting to ONNX, or a query
path without onnxruntime), so ``retriever search`` on a collection whose ONNX export
exists never pays for torch's import.
"""

from __future__ import annotations

__all__ = ["TorchSentenceModel", "import_torch_stack"]

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from retriever.errors import MissingDependencyError, RetrieverError

from .batching import length_batches


def import_torch_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"the text encoder needs torch and transformers ({exc.name} is missing)",
            hint="pip install 'vision-retriever[text]'",
        ) from exc
    return torch, transformers


def load_pretrained(location: str, local_files_only: bool, **kwargs: Any) -> tuple[Any, Any]:
    """(tokenizer, model) from a directory or hub id; OSError becomes a RetrieverError."""
    _, transformers = import_torch_stack()
    transformers.utils.logging.disable_progress_bar()  # our own progress goes to stderr
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            location, local_files_only=local_files_only)
        model = transformers.AutoModel.from_pretrained(
            location, local_files_only=local_files_only, **kwargs)
    except OSError as exc:
        raise RetrieverError(
            f"cannot load text model {location!r}: {exc}",
            hint="pass a local model directory; no model hub is reachable offline",
        ) from exc
    return tokenizer, model


def takes_token_types(model: Any) -> bool:
    """BERT-like models take token_type_ids; MPNet, DistilBERT and others do not."""
    return "token_type_ids" in inspect.signature(model.forward).parameters


class TorchSentenceModel:
    """A transformers encoder with mean pooling, on the device and dtype asked for."""

    def __init__(self, location: str, *, local_files_only: bool = True,
                 device: str = "auto", dtype: str = "float32") -> None:
        torch, _ = import_torch_stack()
        from retriever.engine import resolve_device, resolve_dtype

        self._torch = torch
        self.tokenizer, self.model = load_pretrained(location, local_files_only)
        self.device = resolve_device(device)
        # float32 by default even on GPU: the model is small, and half precision would
        # change the vectors of an existing collection.
        self.model.eval().to(self.device, resolve_dtype(dtype, self.device))
        self.dim = int(self.model.config.hidden_size)
        self.commit = getattr(self.model.config, "_commit_hash", None)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without the special ones (what a window budget counts)."""
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(row) for row in ids]

    def embed(self, texts: Sequence[str], *, max_length: int, batch_size: int) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), np.float32)  # (n_texts, dim)
        lengths = [len(row) for row in self.tokenizer(
            list(texts), truncation=True, max_length=max_length)["input_ids"]]
        with torch.inference_mode():
            for idx in length_batches(lengths, batch_size):
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=max_length, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                hidden = self.model(**batch).last_hidden_state  # (b, seq, dim)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, seq, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, dim)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out
