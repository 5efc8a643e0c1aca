from __future__ import annotations

import json

import pytest

from retriever.errors import ManifestMismatchError, RetrieverError
from retriever.manifest import SCHEMA_VERSION, EncoderIdentity, Manifest


def _identity(**changes):
    base = dict(name="text/minilm", model_id="m", revision="r1", dim=384, kind="multi")
    return EncoderIdentity(**{**base, **changes})


def test_roundtrip_and_compatibility():
    manifest = Manifest(encoder=_identity(options={"context": 2}), indexer="lancedb",
                        indexer_options={"index_type": "hnsw"})
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest and again.indexer_options == {"index_type": "hnsw"}
    again.check_compatible(_identity(options={"model": "/elsewhere/same-weights"}), "c")
    for change in ({"revision": "r2"}, {"dim": 128}, {"kind": "single"}, {"name": "clip/x"},
                   {"model_id": "other/model"}, {"revision": "r1+ctx2"}):
        with pytest.raises(ManifestMismatchError, match="was built with encoder text/minilm"):
            again.check_compatible(_identity(**change), "c")


def test_two_hub_models_of_the_same_dimension_are_not_compatible():
    """Item 7: model ids differ, so the collection refuses the other model."""
    a = _identity(model_id="org/model-a", revision="unknown+ctx1")
    b = _identity(model_id="org/model-b", revision="unknown+ctx1")
    assert not a.same_vectors_as(b)
    assert not _identity(model_id="org/a").same_vectors_as(_identity(model_id="org/b"))


def test_unknown_revisions_match_only_the_same_model_id():
    old = _identity(model_id="org/model", revision="unknown+ctx1")
    assert old.same_vectors_as(_identity(model_id="org/model", revision="abc+ctx1"))
    assert not old.same_vectors_as(_identity(model_id="org/model", revision="abc+ctx2"))
    assert not old.same_vectors_as(_identity(model_id="org/other", revision="abc+ctx1"))


def test_old_manifests_read_and_match_by_fingerprint():
    """A manifest written before model_id_scheme / indexer_options: its model id may be the
    directory the weights were loaded from, so the fingerprint decides."""
    text = json.dumps({
        "encoder": {"name": "text/minilm", "model_id": "/old/dir/minilm", "revision": "r1+ctx1",
                    "dim": 384, "kind": "multi", "options": {"model": "/old/dir/minilm"}},
        "indexer": "lancedb", "compressor": None, "quantization": "none",
        "schema_version": 1, "created_by": "vision-retriever"})
    old = Manifest.from_json(text)
    assert old.indexer_options == {} and old.encoder.model_id_scheme == 1
    old.check_compatible(_identity(model_id="sentence-transformers/x", revision="r1+ctx1"), "c")
    with pytest.raises(ManifestMismatchError):
        old.check_compatible(_identity(model_id="sentence-transformers/x", revision="r2+ctx1"),
                             "c")
    # an unknown fingerprint in an old manifest: only the same model id is accepted
    legacy = Manifest.from_json(text.replace('"r1+ctx1"', '"unknown+ctx1"'))
    with pytest.raises(ManifestMismatchError):
        legacy.check_compatible(_identity(model_id="sentence-transformers/x", revision="r1+ctx1"),
                                "c")


def test_build_time_indexer_options_are_fixed():
    from retriever.errors import UsageError

    manifest = Manifest(encoder=_identity(), indexer="faiss", indexer_options={"dtype": "float32"})
    manifest.check_indexer_options({"dtype": "float32", "index_type": None},
                                   {"dtype": "float16", "index_type": None}, "c")
    with pytest.raises(UsageError, match="built with indexer option dtype='float32'"):
        manifest.check_indexer_options({"dtype": "float16"}, {"dtype": "float16"}, "c")
    with pytest.raises(UsageError, match="index_type=None, not 'hnsw'"):
        manifest.check_indexer_options({"index_type": "hnsw"}, {"index_type": None}, "c")


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
