"""Tiny random-weight CLIP and SigLIP checkpoints, saved like hub checkpoints.

No model hub is reachable, so tests build models from tiny configs and ``save_pretrained``
them (model AND processor) to a directory, which the plugins then load through their
normal code path.

Tokenizers:
- CLIP: the real CLIP BPE vocabulary that ships inside open_clip, handed to transformers'
  ``CLIPTokenizer`` as ``vocab=`` / ``merges=`` (``vocab_file=`` silently gives wrong ids).
  open_clip names the two specials ``<start_of_text>`` / ``<end_of_text>``; transformers
  expects ``<|startoftext|>`` / ``<|endoftext|>`` at the same ids.
- SigLIP: the real one is a sentencepiece model (``SiglipTokenizer``, needs the
  sentencepiece package) and none ships offline. ``SiglipProcessor`` accepts any tokenizer,
  so tests use transformers' tokenizers-backed ``GemmaTokenizer`` (BPE with byte fallback,
  spaces as "▁", the Gemma/SigLIP-2 family) over a 271-entry vocabulary: every text
  tokenizes (unknown characters fall back to bytes), padded on the right like SigLIP's.
"""

from __future__ import annotations

from pathlib import Path

_TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
IMAGE_SIZE = 32
PATCH = 8


def clip_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    reference = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(token, token): i for token, i in reference.encoder.items()}
    merges = [pair for pair, _ in sorted(reference.bpe_ranks.items(), key=lambda kv: kv[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def build_tiny_clip(directory: Path, *, image_size: int = IMAGE_SIZE, patch: int = PATCH,
                    shortest_edge: int | None = None, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(_TOWER, vocab_size=len(tokenizer), max_position_embeddings=77,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(_TOWER, image_size=image_size, patch_size=patch),
        projection_dim=24,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": shortest_edge or image_size},
        crop_size={"height": image_size, "width": image_size})
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def siglip_tokenizer(max_length: int = 16):
    from transformers import GemmaTokenizer

    vocab = {token: i for i, token in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for word in ["▁", "▁a", "▁photo", "▁of", "▁red", "▁square", "▁invoice", "▁total", "▁due",
                 "▁letter"]:
        vocab[word] = len(vocab)
    return GemmaTokenizer(vocab=vocab, merges=[], padding_side="right", add_bos_token=False,
                          add_eos_token=True, model_max_length=max_length)


def build_tiny_siglip(directory: Path, *, image_size: int = IMAGE_SIZE, patch: int = PATCH,
                      seed: int = 0) -> Path:
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor
    from transformers import SiglipTextConfig, SiglipVisionConfig

    tokenizer = siglip_tokenizer()
    text = SiglipTextConfig(**_TOWER, vocab_size=len(tokenizer), max_position_embeddings=16,
                            pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = SiglipVisionConfig(**_TOWER, image_size=image_size, patch_size=patch)
    config = SiglipConfig(text_config=text.to_dict(), vision_config=vision.to_dict())
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
