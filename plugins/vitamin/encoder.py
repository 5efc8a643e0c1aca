"""ViTamin CLIP encoders through open_clip (model configs are open_clip's data, not ours).

Weights come from a local checkpoint (``.safetensors``, or a torch file loaded with
``weights_only=True``: no pickle code runs) or, where a hub is reachable, an open_clip
pretrained tag such as ``datacomp1b``. One vector per page and per query; with
``patches=True`` each page also gets one vector per token of the ViT stage, boxed on the
original page.

Patch vectors: ViTamin (timm ``vitamin_*``) has no CLS token and pools by averaging its
tokens, then applies ``fc_norm`` (LayerNorm) and open_clip's linear projection. Each token
goes through the same ``fc_norm`` and projection, so patch vectors live in the joint space
by the very map the pooled vector uses.

Patch boxes: ViTamin's tokens come from a convolutional stem (stride-2 3x3 convolutions
with padding 1, stride 16 in all), not from non-overlapping 16x16 patches. Token ``i`` is
centred on input pixel ``16 * i``, half a cell up-left of cell ``i``'s centre, so boxes are
shifted by that much (checked in the tests: a red square centred on a token moves that
token most).
"""

from __future__ import annotations

__all__ = ["VitaminEncoder", "transform_geometry"]

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.engine import EncodingEngine, PreparedBatch, resolve_flag
from retriever.errors import MissingDependencyError, RetrieverError, UsageError
from retriever.geometry import input_window, patch_grid_boxes
from retriever.manifest import EncoderIdentity
from retriever.model_source import weights_fingerprint
from retriever.types import WHOLE_PAGE, MultiVector, Page

_WHOLE = np.asarray([WHOLE_PAGE], np.float32)  # (1, 4)
_PIXEL_ONLY = {"MaybeConvertMode", "MaybeToTensor", "ToTensor", "Normalize", "ConvertImageDtype",
               "PILToTensor", "Lambda"}
_CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                     "model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin")


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as exc:
        raise MissingDependencyError(
            f"ViTamin encoders need open_clip_torch and timm ({exc.name} is missing)",
            hint="pip install 'vision-retriever[vitamin]'") from exc
    return open_clip


def transform_geometry(transform: Any) -> dict[str, Any]:
    """``input_window`` keywords for an open_clip eval transform (Resize, CenterCrop)."""
    found: dict[str, Any] = {}
    for step in getattr(transform, "transforms", [transform]):
        kind = type(step).__name__
        if kind == "Resize" and not found and getattr(step, "max_size", None) is None:
            size = step.size
            size = [size] if isinstance(size, int) else list(size)
            if len(size) == 1:
                found["shortest_edge"] = int(size[0])
            else:
                found["size"] = (int(size[0]), int(size[1]))
        elif kind == "CenterCrop" and "crop" not in found:
            found["crop"] = (int(step.size[0]), int(step.size[1]))
            found["offset"] = "round"  # torchvision rounds half crop offsets
        elif kind not in _PIXEL_ONLY:
            raise UsageError(f"cannot map patches back to the page through {kind}",
                             hint="use patches=false with this model")
    return found


def _locate_checkpoint(checkpoint: str, tags: Sequence[str] = ()) -> tuple[str | None, str]:
    """``(local weights file or None for a tag, revision)``.

    A path that exists, or one of open_clip's pretrained ``tags`` for the config; nothing
    else is guessed, so a mistyped path never becomes a download attempt.
    """
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        files = [path / n for n in _CHECKPOINT_NAMES if (path / n).is_file()]
        files = files or sorted(path.glob("*.safetensors"))
        if not files:
            raise UsageError(f"no open_clip checkpoint in directory {checkpoint!r}",
                             hint="expected open_clip_model.safetensors or a *.safetensors file")
        return str(files[0]), weights_fingerprint(path)[:32]
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return str(path.resolve()), digest.hexdigest()[:32]
    if checkpoint in tags:
        return None, f"tag:{checkpoint}"
    known = f"; open_clip tags for this model: {', '.join(tags)}" if tags else ""
    raise UsageError(f"checkpoint {checkpoint!r} does not exist",
                     hint=f"pass a .safetensors file or a directory{known}")


_PAGE_BATCH = 8  # pages per forward pass unless --batch-size says (x4 on a GPU)


class VitaminEncoder:
    """Single-vector (or, with patches, multi-vector) ViTamin encoder."""

    needs_image = True
    needs_regions = False
    dpi = 100

    def __init__(
        self,
        checkpoint: str | None = None,
        *,
        name: str = "vitamin/s",
        config: str = "ViTamin-S",
        patches: bool | str = False,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | str | None = None,
    ) -> None:
        open_clip = _open_clip()
        if not checkpoint:
            raise UsageError(f"{name} needs weights: checkpoint=<file.safetensors or directory>",
                             hint="open_clip tags (e.g. checkpoint=datacomp1b) need a hub")
        self.name = name
        self.patches = resolve_flag(patches, "patches")
        self.kind = "multi" if self.patches else "single"
        self._engine = EncodingEngine(device=device, dtype=dtype,
                                      batch_size=None if batch_size is None else int(batch_size))
        tags = open_clip.list_pretrained_tags_by_model(config)
        weights, self._revision = _locate_checkpoint(str(checkpoint), tags)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                config, pretrained=weights or str(checkpoint), weights_only=True)
        except RuntimeError as exc:  # open_clip reports bad tags and shapes this way
            raise RetrieverError(f"cannot load {name} from {checkpoint!r}: {exc}") from exc
        self._model = model.eval().to(self._engine.device, dtype=self._engine.dtype)
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(config)
        self.dim = int(open_clip.get_model_config(config)["embed_dim"])
        self._config = config
        self._geometry = transform_geometry(preprocess) if self.patches else None
        self._trunk = self._check_patch_path() if self.patches else None
        self._options: dict[str, Any] = {"checkpoint": str(checkpoint)}
        if self.patches:
            self._options["patches"] = True

    def _check_patch_path(self) -> Any:
        """The timm trunk, when it pools by averaging prefix-free tokens (ViTamin does)."""
        trunk = getattr(self._model.visual, "trunk", None)
        if trunk is None or getattr(trunk, "global_pool", None) != "avg" \
                or not hasattr(trunk, "fc_norm") or not hasattr(trunk, "forward_features"):
            raise UsageError(f"{self.name}: this vision tower does not expose patch tokens",
                             hint="use patches=false")
        return trunk

    def _token_shift(self, stride: int) -> float:
        """Input pixels from a cell's centre to its token's centre (see module docstring)."""
        conv_stem = hasattr(self._trunk.patch_embed, "backbone")  # timm HybridEmbed
        return 0.5 - stride / 2 if conv_stem else 0.0

    @property
    def engine(self) -> EncodingEngine:
        return self._engine

    @property
    def identity(self) -> EncoderIdentity:
        suffix = "+patches" if self.patches else ""
        return EncoderIdentity(name=self.name, model_id=f"open_clip/{self._config}",
                               revision=self._revision + suffix, dim=self.dim, kind=self.kind,
                               options=dict(self._options))

    # -- pages ------------------------------------------------------------------------

    def _prepare_pages(self, pages: list[Page]) -> PreparedBatch:
        import torch

        images = []
        for page in pages:
            if page.image is None:
                raise RetrieverError(f"page {page.key} of {page.source} has no image to encode")
            images.append(page.image.convert("RGB"))
        pixels = torch.stack([self._preprocess(im) for im in images])  # (b, 3, H, W)
        meta: list[Any] = [None] * len(images)
        if self._geometry is not None:
            rows, cols = self._trunk.patch_embed.grid_size
            _, _, height, width = pixels.shape
            stride = height // rows
            if rows * stride != height or cols * stride != width:
                raise UsageError(f"{self.name}: input {width}x{height} is not a whole "
                                 f"{cols}x{rows} grid of patches", hint="use patches=false")
            shift = self._token_shift(stride)
            meta = [patch_grid_boxes(input_window(im.width, im.height, **self._geometry),
                                     height, width, stride, shift=shift) for im in images]
        return PreparedBatch({"pixels": pixels}, meta)

    def _forward_pages(self, batch: PreparedBatch) -> list[MultiVector]:
        import torch

        pixels = batch.tensors["pixels"]  # (b, 3, H, W)
        normalize = torch.nn.functional.normalize
        if self._trunk is None:
            pooled = self._model.encode_image(pixels)  # (b, d)
            pooled = normalize(pooled.float(), dim=-1).cpu().numpy()
            return [MultiVector(pooled[i:i + 1], _WHOLE) for i in range(len(pooled))]
        trunk, head = self._trunk, self._model.visual.head
        tokens = trunk.forward_features(pixels)  # (b, n_tokens, width)
        pooled = head(trunk.forward_head(tokens))  # (b, d): exactly encode_image
        patches = head(trunk.fc_norm(tokens[:, trunk.num_prefix_tokens:]))  # (b, n, d)
        pooled = normalize(pooled.float(), dim=-1).cpu().numpy()
        patches = normalize(patches.float(), dim=-1).cpu().numpy()
        out = []
        for i, (boxes, keep) in enumerate(batch.meta):
            vectors = np.concatenate([pooled[i:i + 1], patches[i][keep]])  # (1 + n_kept, d)
            boxes = np.concatenate([_WHOLE, boxes[keep].astype(np.float32)])
            out.append(MultiVector(vectors, boxes))
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
        return PreparedBatch({"tokens": self._tokenizer(texts)}, [None] * len(texts))

    def _forward_texts(self, batch: PreparedBatch) -> list[MultiVector]:
        import torch

        vectors = self._model.encode_text(batch.tensors["tokens"])  # (b, d)
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
        return [MultiVector(vectors[i:i + 1], _WHOLE) for i in range(len(vectors))]

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        return self._engine.run([t.strip() for t in texts], self._prepare_texts,
                                self._forward_texts, default_batch_size=64)
