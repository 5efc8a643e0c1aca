"""Joint-space embeddings from transformers' ``CLIPModel`` and ``SiglipModel``.

Pooled image and text embeddings are exactly what ``get_image_features`` /
``get_text_features`` return. Patch embeddings are our choice, made so that each patch
lands in the same space as the pooled vector by the same map that produced it:

- CLIP pools by taking the CLS token, applying ``post_layernorm`` and the linear
  ``visual_projection``. Each patch token goes through the same LayerNorm and projection.
- SigLIP pools with an attention head (one learned probe attends over all tokens, then
  LayerNorm + MLP with a residual). Each patch goes through that head with the patch as
  its only key: softmax over one key is 1, so the result is the head's value/output
  projection of the patch plus the head's MLP, the head "looking at this patch alone".

Neither map was trained to align single patches with text (MaskCLIP-style re-wiring of the
last attention layer is a possible refinement), so patch vectors are for locating things
on a page (grounding) more than for ranking pages.
"""

from __future__ import annotations

__all__ = ["Family", "family_of_model", "image_embeddings", "text_embeddings"]

from typing import Any, Literal

from retriever.errors import UsageError

Family = Literal["clip", "siglip"]


def family_of_model(model: Any) -> Family:
    """Which of the two supported architectures a loaded model is."""
    from transformers import CLIPModel, SiglipModel

    if isinstance(model, CLIPModel):
        return "clip"
    if isinstance(model, SiglipModel):
        if not getattr(model.config.vision_config, "vision_use_head", True):
            raise UsageError("this SigLIP checkpoint has no pooling head (vision_use_head=False)")
        return "siglip"
    raise UsageError(f"unsupported model class {type(model).__name__}",
                     hint="the clip plugin loads CLIPModel and SiglipModel checkpoints")


def _siglip_head_per_token(head: Any, tokens: Any) -> Any:
    """SigLIP's attention-pooling head applied to every token on its own."""
    b, n, d = tokens.shape
    flat = tokens.reshape(b * n, 1, d)  # (b*n, 1, d): each token is its own sequence
    probe = head.probe.expand(b * n, 1, d)  # (b*n, 1, d)
    attended = head.attention(probe, flat, flat, need_weights=False)[0]  # (b*n, 1, d)
    out = attended + head.mlp(head.layernorm(attended))  # (b*n, 1, d)
    return out.reshape(b, n, d)  # (b, n, d)


def image_embeddings(model: Any, family: Family, pixel_values: Any,
                     patches: bool) -> tuple[Any, Any | None]:
    """``(pooled (b, dim), patch vectors (b, n_patches, dim) or None)``, unnormalized."""
    vision = model.vision_model
    out = vision(pixel_values=pixel_values)
    if family == "clip":
        pooled = model.visual_projection(out.pooler_output)  # (b, dim)
        if not patches:
            return pooled, None
        tokens = out.last_hidden_state[:, 1:, :]  # (b, n_patches, hidden): CLS dropped
        return pooled, model.visual_projection(vision.post_layernorm(tokens))  # (b, n, dim)
    pooled = out.pooler_output  # (b, dim): the attention-pooling head's output
    if not patches:
        return pooled, None
    # SigLIP's last_hidden_state is already post-LayerNorm and has no CLS token.
    return pooled, _siglip_head_per_token(vision.head, out.last_hidden_state)  # (b, n, dim)


def text_embeddings(model: Any, inputs: dict[str, Any]) -> Any:
    """``get_text_features`` as a tensor (b, dim), for transformers 4.x and 5.x alike."""
    out = model.get_text_features(**inputs)
    return out if hasattr(out, "shape") else out.pooler_output
