"""Random-weight ColVision models and offline processors, for tests and benchmarks.

No model hub is reachable here and no Gemma tokenizer ships offline, so these build
everything from configs: a small BPE tokenizer trained with the ``tokenizers`` library on
a few sentences (Gemma-style: "▁" for spaces and byte fallback; Qwen-style: byte-level),
the real image processors, and a model config -- tiny (milliseconds on a CPU) or the
full-size architecture (the real compute cost, for GPU throughput benchmarks).
``save_synthetic`` writes model and processor with ``save_pretrained`` so that the normal
loading path (``model=<dir>``) reads them back.
"""

from __future__ import annotations

__all__ = ["PRESETS", "build_synthetic", "save_synthetic", "gemma_tokenizer", "qwen_tokenizer"]

import json
from pathlib import Path
from typing import Any

_CORPUS = [
    "Describe the image.", "Question: what is the total amount due on the invoice?",
    "Query: which region had the highest quarterly revenue?",
    "The warehouse migration plan has four phases and a timeline.",
    "Payment terms: thirty days, late interest of 1.5% per month.",
    "Renewable energy installations, workforce and hiring, risks and outlook.",
]
_GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<image>"]
_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

#: name -> (family, size); "full" presets are the published architectures
PRESETS: dict[str, tuple[str, str]] = {
    "colpali-tiny": ("colpali", "tiny"),
    "colqwen2-tiny": ("qwen2_vl", "tiny"),
    "colqwen2.5-tiny": ("qwen2_5_vl", "tiny"),
    "colpali-paligemma-3b-448": ("colpali", "full"),
    "colqwen2-qwen2-vl-2b": ("qwen2_vl", "full"),
}


def _train_bpe(tokenizer: Any, specials: list[str], alphabet: list[str], vocab_size: int
               ) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator(_CORPUS, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def gemma_tokenizer(vocab_size: int = 400) -> Any:
    """A Gemma-style BPE (``▁`` spaces, byte fallback) trained on a few sentences."""
    import string

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import GemmaTokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")  # as GemmaTokenizer does
    tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    alphabet = list("▁" + string.ascii_letters + string.digits + string.punctuation)
    vocab, merges = _train_bpe(tok, _GEMMA_SPECIALS, alphabet, vocab_size)
    for byte in range(256):  # byte fallback needs every <0xNN> piece
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=merges,
                          extra_special_tokens={"image_token": "<image>"})


def qwen_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE with Qwen2-VL's special tokens, trained on a few sentences."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    vocab, merges = _train_bpe(tok, _QWEN_SPECIALS, pre_tokenizers.ByteLevel.alphabet(),
                               vocab_size)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges,
                               extra_special_tokens={"image_token": "<|image_pad|>"})
    tokenizer.add_special_tokens({"additional_special_tokens": _QWEN_SPECIALS[1:]})
    return tokenizer


def _round_up(n: int, to: int = 64) -> int:
    return (n + to - 1) // to * to


def _image_processor(transformers: Any, name: str) -> Any:
    """The PIL implementation where this transformers has one (no torchvision needed)."""
    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def _colpali(size: str) -> tuple[Any, Any]:
    import transformers
    from transformers import ColPaliConfig, ColPaliProcessor, PaliGemmaConfig

    image, patch = (64, 8) if size == "tiny" else (448, 14)
    image_processor = _image_processor(transformers, "SiglipImageProcessor")(
        size={"height": image, "width": image})
    image_processor.image_seq_length = (image // patch) ** 2
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=gemma_tokenizer())
    tokenizer = processor.tokenizer
    if size == "tiny":
        vocab = _round_up(len(tokenizer))
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2)
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, head_dim=16)
        projection = 32
    else:  # PaliGemma-3B at 448 px, as in vidore/colpali-v1.3-hf
        vocab = 257216
        vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                      num_attention_heads=16)
        text = dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                    num_attention_heads=8, num_key_value_heads=1, head_dim=256)
        projection = 2048
    specials = {k: tokenizer.convert_tokens_to_ids(t) for k, t in
                (("pad_token_id", "<pad>"), ("bos_token_id", "<bos>"), ("eos_token_id", "<eos>"))}
    vlm = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", image_size=image, patch_size=patch,
                           vision_use_head=False, **vision),
        text_config=dict(model_type="gemma", vocab_size=vocab, **text, **specials),
        image_token_index=processor.image_token_id, vocab_size=vocab,
        projection_dim=projection, hidden_size=projection)
    return ColPaliConfig(vlm_config=vlm, embedding_dim=128), processor


def _colqwen(arch: str, size: str) -> tuple[Any, Any]:
    import transformers
    from transformers import ColQwen2Config, ColQwen2Processor, Qwen2_5_VLConfig, Qwen2VLConfig

    tokenizer = qwen_tokenizer()
    # tiny: at most 64 merged tokens a page; full: colpali-engine's 768-token cap
    max_tokens = 64 if size == "tiny" else 768
    image_processor = _image_processor(transformers, "Qwen2VLImageProcessor")(
        size={"shortest_edge": 4 * 28 * 28, "longest_edge": max_tokens * 28 * 28})
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _QWEN_SPECIALS}
    token_ids = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                     vision_start_token_id=ids["<|vision_start|>"],
                     vision_end_token_id=ids["<|vision_end|>"])
    specials = dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    if size == "tiny":
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1,
                    vocab_size=_round_up(len(tokenizer)),
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                     "mrope_section": [2, 3, 3]}, **specials)
        if arch == "qwen2_vl":
            vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
        else:
            vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                          out_hidden_size=32, window_size=56, fullatt_block_indexes=[1])
    else:  # Qwen2-VL-2B-Instruct, the backbone of vidore/colqwen2-v1.0-hf
        if arch != "qwen2_vl":
            raise ValueError("only the Qwen2-VL-2B full-size preset is defined")
        text = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                    num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                     "mrope_section": [16, 24, 24]}, **specials)
        vision = dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4)
    config_class = Qwen2VLConfig if arch == "qwen2_vl" else Qwen2_5_VLConfig
    vlm = config_class(text_config=text, vision_config=dict(patch_size=14, **vision),
                       **token_ids)
    return ColQwen2Config(vlm_config=vlm, embedding_dim=128), processor


def build_synthetic(preset: str, *, seed: int = 0, dtype: Any = None, device: Any = None
                    ) -> tuple[Any, Any]:
    """``(model, processor)`` with random weights for a preset of ``PRESETS``."""
    import torch
    from transformers import ColPaliForRetrieval, ColQwen2ForRetrieval

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    arch, size = PRESETS[preset]
    config, processor = _colpali(size) if arch == "colpali" else _colqwen(arch, size)
    model_class = ColPaliForRetrieval if arch == "colpali" else ColQwen2ForRetrieval
    torch.manual_seed(seed)
    # built directly in the target dtype on the target device: a 3B model made in float32
    # on the CPU first would cost 12 GB and minutes of initialization. "meta" builds the
    # shapes only (parameter counts without memory).
    with torch.device(device or "cpu"):
        model = model_class._from_config(config, dtype=dtype or torch.float32)
    return model.eval(), processor


def save_synthetic(preset: str, directory: str | Path, *, seed: int = 0) -> Path:
    """Build a preset and ``save_pretrained`` model + processor into ``directory``."""
    model, processor = build_synthetic(preset, seed=seed)
    directory = Path(directory)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
