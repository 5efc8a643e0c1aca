"""A torch-free query path: the sentence model exported once to ONNX, run by onnxruntime.

``retriever search`` spent most of its cold start importing torch and transformers and
loading the model to embed one query. The export (done once, at index time or on first
use, by ``export_model``) writes ``model.onnx`` (mean pooling and L2 normalization inside
the graph) and the exact tokenizer transformers used (``tokenizer.json``) into a cache
directory keyed by the weights fingerprint, so other weights never reuse it. Files are
written to a temporary name and renamed, so a reader never sees half an export; a
concurrent export by another process only replaces one complete file with an equal one.
With ``onnx`` installed the weights go to a raw file beside the graph (faster to open)
and ``query_backend=onnx-int8`` can quantize them (dynamic int8, ``model-int8.onnx``).

The export checks itself before it is published: the ONNX embeddings of probe texts must
match the torch model's (cosine above ``PARITY_MIN``), or nothing is written.
"""

from __future__ import annotations

__all__ = ["EXPORT_VERSION", "PARITY_MIN", "ExportPaths", "export_paths", "export_model",
           "quantize_model", "OnnxSentenceModel", "onnxruntime_available"]

import importlib.util
import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import MissingDependencyError, RetrieverError

from .batching import length_batches
from .cache import atomic_path, cache_root

#: bump when the graph's inputs, outputs or pooling change: old exports are then ignored
EXPORT_VERSION = 1
#: the least cosine between ONNX and torch embeddings of the probes for an export to count
PARITY_MIN = 0.999
_DATA_PREFIX = "weights-"
_PROBES = ("how much interest do I pay if I settle the invoice late?", "x",
           "Payment is due within 30 days of the invoice date by bank transfer. " * 12,
           "Résumé: naïve café, 東京, 3.14159 ≠ π")


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@dataclass(frozen=True)
class ExportPaths:
    directory: Path

    @property
    def fp32(self) -> Path:
        return self.directory / "model.onnx"

    @property
    def int8(self) -> Path:
        return self.directory / "model-int8.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.directory / "tokenizer.json"

    @property
    def info(self) -> Path:
        return self.directory / "export.json"

    def model(self, int8: bool = False) -> Path:
        return self.int8 if int8 else self.fp32

    def ready(self, int8: bool = False) -> bool:
        """The tokenizer is published before the model, so the model marks completeness."""
        return self.tokenizer.is_file() and self.model(int8).is_file()


def export_paths(fingerprint: str, root: Path | None = None) -> ExportPaths:
    """The cache directory of one set of weights (``fingerprint``: their content hash)."""
    if not fingerprint or fingerprint == "unknown":
        raise RetrieverError("cannot cache an ONNX export of weights without a fingerprint")
    return ExportPaths((root or cache_root()) / "onnx" / f"{fingerprint}-v{EXPORT_VERSION}")


def _pooled_module(torch: Any, model: Any, token_types: bool) -> Any:
    class Pooled(torch.nn.Module):
        """Mean pooling + L2 norm in the graph, with a ready 4-D additive mask: a 2-D mask
        goes through transformers' mask builders, whose shape checks a trace freezes."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            keep = attention_mask.to(torch.float32)  # (b, seq)
            bias = ((1.0 - keep) * torch.finfo(torch.float32).min)[:, None, None, :]
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if token_types else {}
            hidden = self.model(input_ids=input_ids, attention_mask=bias,
                                **extra).last_hidden_state  # (b, seq, dim)
            mask = keep.unsqueeze(-1)  # (b, seq, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, dim)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return Pooled().eval()


def export_model(location: str, paths: ExportPaths, *, local_files_only: bool = True,
                 max_length: int = 128) -> dict[str, Any]:
    """Export the weights at ``location`` to ``paths`` (fp32) and return what was measured.

    Needs torch, transformers and onnxruntime; loads its own float32 CPU copy of the model
    with eager attention (the traceable path), whatever device the pages are encoded on.
    """
    if not onnxruntime_available():
        raise MissingDependencyError("the ONNX query path needs onnxruntime",
                                     hint="pip install onnxruntime")
    from .torch_model import import_torch_stack, load_pretrained, takes_token_types

    torch, _ = import_torch_stack()
    tokenizer, model = load_pretrained(location, local_files_only, attn_implementation="eager")
    model = model.float().eval()
    token_types = takes_token_types(model)
    wrapper = _pooled_module(torch, model, token_types)
    sample = tokenizer(list(_PROBES[:2]), padding=True, return_tensors="pt")
    with atomic_path(paths.tokenizer) as tmp:
        tokenizer.backend_tokenizer.save(str(tmp))  # exactly the tokenizer transformers ran
    with atomic_path(paths.fp32) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow
        torch.onnx.export(
            wrapper, (sample["input_ids"], sample["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                          "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}},
            opset_version=17, dynamo=False)
        data = _externalize(tmp)
        try:
            cosine, dim = _parity(torch, tokenizer, model, tmp, paths, max_length)
            if not cosine > PARITY_MIN:
                raise RetrieverError(f"the ONNX export of {location} disagrees with torch "
                                     f"(cosine {cosine:.5f}); not used")
        except BaseException:
            if data:  # nothing will name it: the model is not published
                (paths.directory / data).unlink(missing_ok=True)
            raise
    _drop_stale_data(paths, keep=data)
    info = {"export_version": EXPORT_VERSION, "source": location, "dim": dim,
            "parity_cosine_min": cosine, "torch": torch.__version__,
            "token_type_ids": token_types, "weights_file": data}
    with atomic_path(paths.info) as tmp:
        tmp.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def _parity(torch: Any, tokenizer: Any, model: Any, model_file: Path, paths: ExportPaths,
            max_length: int) -> tuple[float, int]:
    """Least cosine over the probes between the export (tokenizers + onnxruntime, as
    queries will run) and the torch model's own path (2-D mask, transformers' tokenizer)."""
    with torch.inference_mode():
        batch = tokenizer(list(_PROBES), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (b, seq, dim)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (b, seq, 1)
        ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    onnx = OnnxSentenceModel(model_file, paths.tokenizer).embed(
        list(_PROBES), max_length=max_length, batch_size=len(_PROBES))
    return float((onnx * ref.numpy()).sum(1).min()), int(ref.shape[1])


def _externalize(model_file: Path) -> str | None:
    """Move the weights out of the protobuf into a raw file beside it (``onnx`` needed).

    onnxruntime then copies them instead of parsing them: its session for MiniLM opens in
    about 0.09 s instead of 0.19 s here, a tenth of a cold search. The file has a new name
    per export, so it is complete before the model that names it is published, and a
    reader of the previous model keeps its own. Without ``onnx`` the model stays whole.
    """
    try:
        import onnx
    except ImportError:
        return None
    name = f"{_DATA_PREFIX}{uuid.uuid4().hex[:12]}.bin"
    model = onnx.load(str(model_file))
    onnx.save_model(model, str(model_file), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=name, size_threshold=1024)
    return name


def _drop_stale_data(paths: ExportPaths, keep: str | None, grace_s: float = 600.0) -> None:
    """Weights files of earlier exports, once no reader can still be opening them."""
    for old in paths.directory.glob(f"{_DATA_PREFIX}*.bin"):
        try:
            if old.name != keep and time.time() - old.stat().st_mtime > grace_s:
                old.unlink()
        except OSError:
            pass  # another process cleaned it first


def quantize_model(paths: ExportPaths) -> Path:
    """Dynamic int8 weights (``model-int8.onnx``) from the fp32 export; needs ``onnx``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingDependencyError(f"int8 quantization needs {exc.name}",
                                     hint="pip install onnx onnxruntime") from exc
    if not paths.fp32.is_file():
        raise RetrieverError(f"no ONNX export to quantize in {paths.directory}")
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, on root
    try:
        with atomic_path(paths.int8) as tmp:
            # per-channel scales on the MatMul weights only (the embedding tables stay
            # float): cosine to fp32 0.98 at worst on our probes, against 0.92 per-tensor
            quantize_dynamic(str(paths.fp32), str(tmp), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"])
    finally:
        logging.getLogger().setLevel(quiet)
    return paths.int8


def _threads() -> int:
    """onnxruntime's pool follows OMP_NUM_THREADS like torch's does; 0: its own choice."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


class OnnxSentenceModel:
    """Embeddings from an exported graph: tokenizers + onnxruntime, no torch."""

    def __init__(self, model_path: str | os.PathLike[str],
                 tokenizer_path: str | os.PathLike[str]) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(f"the ONNX query path needs {exc.name}",
                                         hint="pip install onnxruntime tokenizers") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        # Idle threads would otherwise spin after each query and steal the cores that the
        # page kernel and grounding need next (measured: 45-62 -> 23-32 ms CPU per search).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        self._session = ort.InferenceSession(str(model_path), options,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()  # padded per batch below, to the batch's longest
        self._max_length: int | None = None
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def _encode(self, texts: Sequence[str], max_length: int) -> list[Any]:
        if self._max_length != max_length:  # counts the special tokens, as transformers does
            self._tokenizer.enable_truncation(max_length)
            self._max_length = max_length
        return self._tokenizer.encode_batch(list(texts))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without the special ones (what a window budget counts)."""
        if not texts:
            return []
        self._tokenizer.no_truncation()  # counted whole, as the torch tokenizer does
        self._max_length = None
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def embed(self, texts: Sequence[str], *, max_length: int, batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)  # (n_texts, dim)
        every = self._encode(texts, max_length)  # tokenized once, batched by token count
        for idx in length_batches([len(e.ids) for e in every], batch_size):
            encodings = [every[i] for i in idx]
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(idx), width), np.int64)  # (b, seq); 0 = [PAD], masked out
            mask = np.zeros((len(idx), width), np.int64)  # (b, seq)
            for row, e in enumerate(encodings):
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[idx] = vectors  # (b, dim), already L2-normalized in the graph
        return out
