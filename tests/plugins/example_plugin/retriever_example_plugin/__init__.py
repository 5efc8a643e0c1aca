"""A third-party plugin: a hashing bag-of-words encoder, a compressor that merges
neighbouring vectors in pairs, and one extra CLI command.

It installs and registers exactly like a built-in: an entry point in the ``retriever`` group
and hook implementations from ``retriever.hookspecs``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from retriever import CompressorSpec, EncoderSpec, hookimpl
from retriever.compression import merged
from retriever.manifest import EncoderIdentity
from retriever.types import WHOLE_PAGE, MultiVector, Page

_WORD = re.compile(r"[a-z0-9]+")


class HashingEncoder:
    """One vector per text line: hashed word counts, L2-normalized."""

    kind = "multi"
    needs_image = False
    needs_regions = True
    dpi = 100

    def __init__(self, dim: int = 1024) -> None:
        self.name = "example/hashing"
        self.dim = int(dim)

    @property
    def identity(self) -> EncoderIdentity:
        return EncoderIdentity(self.name, "example-hashing", "v1", self.dim, self.kind,
                               {"dim": self.dim})

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, np.float32)
        for word in _WORD.findall(text.lower()):
            vec[zlib.crc32(word.encode()) % self.dim] += 1.0
        if not vec.any():
            vec[0] = 1.0
        return vec / np.linalg.norm(vec)

    def encode_pages(self, pages: Sequence[Page]) -> list[MultiVector]:
        out = []
        for page in pages:
            lines = [line for para in page.regions for line in para.lines]
            vectors = np.array([self._vector(l.text) for l in lines], np.float32).reshape(-1, self.dim)
            boxes = np.array([l.bbox for l in lines], np.float32).reshape(-1, 4)
            out.append(MultiVector(vectors, boxes))
        return out

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        return [MultiVector(self._vector(t)[None, :], np.array([WHOLE_PAGE], np.float32))
                for t in texts]


@hookimpl
def register_encoders(register) -> None:
    register(EncoderSpec(name="example/hashing", factory=HashingEncoder,
                         description="hashed bag of words per line (test plugin)"))


class PairMerge:
    """Each two consecutive vectors (lines, for the hashing encoder) become one."""

    name = "example/pairs"
    factor = 2

    def compress(self, mv: MultiVector) -> MultiVector:
        return merged(mv, np.arange(mv.n) // 2)


@hookimpl
def register_compressors(register) -> None:
    register(CompressorSpec(name="example/pairs", factory=PairMerge,
                            description="merges consecutive vectors in pairs (test plugin)"))


@hookimpl
def register_commands(cli) -> None:
    @cli.command(name="example-hello")
    def hello(name: str = "world") -> None:
        """Say hello from the example plugin."""
        print(f"hello {name} from retriever-example-plugin")
