"""A test-only plugin for the Ctrl-C tests: the example encoder and LanceDB, with pauses.

Loaded in a real ``retriever`` subprocess through an entry point (``tests/cli_subprocess.py``).
Each point a run passes prints ``AT <point>`` on stderr: ``load`` (the encoder is being
made), ``encode:N`` (the N-th call to encode pages), ``commit:N`` (the N-th batch handed
to LanceDB inside a commit). Points named in ``RETRIEVER_TEST_PAUSE`` (comma-separated)
then print ``PAUSE <point>`` and sleep, so a test can send SIGINT exactly there.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from retriever import EncoderSpec, IndexerSpec, hookimpl
from retriever_example_plugin import HashingEncoder

_passed: dict[str, int] = {}


def _point(kind: str) -> None:
    _passed[kind] = _passed.get(kind, 0) + 1
    name = kind if kind == "load" else f"{kind}:{_passed[kind]}"
    print(f"AT {name}", file=sys.stderr, flush=True)
    if name in os.environ.get("RETRIEVER_TEST_PAUSE", "").split(","):
        print(f"PAUSE {name}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("RETRIEVER_TEST_PAUSE_S", "60")))


class SlowEncoder(HashingEncoder):
    def __init__(self, dim: int = 1024) -> None:
        _point("load")
        super().__init__(dim)
        self.name = "slow/hashing"

    def encode_pages(self, pages):  # type: ignore[no-untyped-def]
        _point("encode")
        return super().encode_pages(pages)


def make_indexer(path: Any, manifest: Any = None, **options: Any) -> Any:
    from indexers.lancedb.indexer import LanceDBIndexer

    class SlowLanceDB(LanceDBIndexer):
        def _to_batch(self, records, schema):  # type: ignore[no-untyped-def]
            _point("commit")
            return super()._to_batch(records, schema)

    return SlowLanceDB(path, manifest, **options)


@hookimpl
def register_encoders(register: Any) -> None:
    register(EncoderSpec(name="slow/hashing", factory=SlowEncoder,
                         description="example/hashing with pauses (interrupt tests)"))


@hookimpl
def register_indexers(register: Any) -> None:
    register(IndexerSpec(name="slow-lancedb", factory=make_indexer,
                         description="lancedb with pauses (interrupt tests)"))
