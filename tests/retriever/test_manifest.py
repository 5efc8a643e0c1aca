from __future__ import annotations

import pytest

from retriever.errors import ManifestMismatchError, RetrieverError
from retriever.manifest import SCHEMA_VERSION, EncoderIdentity, Manifest


def _identity(**changes):
    base = dict(name="text/minilm", model_id="m", revision="r1", dim=384, kind="multi")
    return EncoderIdentity(**{**base, **changes})


def test_roundtrip_and_compatibility():
    manifest = Manifest(encoder=_identity(options={"context": 2}), indexer="lancedb")
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    again.check_compatible(_identity(model_id="/elsewhere/same-weights"), "c")
    for change in ({"revision": "r2"}, {"dim": 128}, {"kind": "single"}, {"name": "clip/x"}):
        with pytest.raises(ManifestMismatchError, match="was built with encoder text/minilm"):
            again.check_compatible(_identity(**change), "c")


def test_newer_schema_and_garbage_are_clear_errors():
    newer = Manifest(encoder=_identity(), indexer="lancedb", schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ManifestMismatchError, match="newer"):
        newer.check_compatible(_identity(), "c")
    with pytest.raises(RetrieverError, match="unreadable"):
        Manifest.from_json("{not json")


def test_quantization_mismatch_is_a_usage_error():
    from retriever.errors import UsageError

    manifest = Manifest(encoder=_identity(), indexer="lancedb", quantization="binary")
    manifest.check_quantization(None, "c")
    manifest.check_quantization("binary", "c")
    with pytest.raises(UsageError, match="uses quantization 'binary', not 'int8'"):
        manifest.check_quantization("int8", "c")
