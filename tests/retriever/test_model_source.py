from __future__ import annotations

import pytest

from retriever.errors import UsageError
from retriever.model_source import (
    UNKNOWN_REVISION,
    ModelSource,
    resolve_model_source,
    source_revision,
    weights_fingerprint,
)

CATALOGUE = {"clip/vit-b-16": "openai/clip-vit-base-patch16"}


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def test_local_directory_hub_id_and_offline(tmp_path, monkeypatch, online):
    local = resolve_model_source(tmp_path)
    assert local.is_local and local.local_files_only and local.hub_id is None
    hub = resolve_model_source("hf:vidore/colpali-v1.3")
    assert (hub.location, hub.hub_id, hub.is_local, hub.local_files_only) == (
        "vidore/colpali-v1.3", "vidore/colpali-v1.3", False, False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_source("hf:vidore/colpali-v1.3").local_files_only
    with pytest.raises(UsageError, match="is not a directory"):
        resolve_model_source(tmp_path / "missing" / "model")
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(UsageError, match="is a file"):
        resolve_model_source(tmp_path / "weights.safetensors")


@pytest.mark.parametrize("typo", ["models/colpali", "colpali-v1.3", "./models/x", "a/b/c"])
def test_a_missing_path_is_never_taken_for_a_hub_id(tmp_path, monkeypatch, online, typo):
    """Item 9: a mistyped relative directory must not become a download attempt."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=f"model '{typo}' is not a directory") as info:
        resolve_model_source(typo)
    if typo == "models/colpali":
        assert "for a hub model write hf:models/colpali" in info.value.hint


def test_a_relative_directory_is_local(tmp_path, monkeypatch):
    (tmp_path / "models" / "colpali").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    source = resolve_model_source("models/colpali")
    assert source.is_local and source.location == str(tmp_path / "models" / "colpali")


def test_catalogue_names_and_their_hub_ids(online):
    assert resolve_model_source("clip/vit-b-16", CATALOGUE).hub_id == \
        "openai/clip-vit-base-patch16"
    assert resolve_model_source("openai/clip-vit-base-patch16", CATALOGUE).hub_id == \
        "openai/clip-vit-base-patch16"
    with pytest.raises(UsageError) as info:
        resolve_model_source("openai/clip-vit-base-patch32", CATALOGUE)
    assert "hf:openai/clip-vit-base-patch32" in info.value.hint
    assert "clip/vit-b-16" in info.value.hint


@pytest.mark.parametrize("bad", ["hf:", "hf:a/b/c", "hf:/abs", "hf:org/na me"])
def test_malformed_hub_ids(bad):
    with pytest.raises(UsageError, match="is not a hub model id"):
        resolve_model_source(bad)


def test_fingerprint_follows_weight_bytes_not_location(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights")
        (d / "config.json").write_text("{}")
    assert weights_fingerprint(a) == weights_fingerprint(b)
    (b / "model.safetensors").write_bytes(b"other weights")
    assert weights_fingerprint(a) != weights_fingerprint(b)


def _fake_hub_cache(cache, repo: str, commit: str, weights: bytes):
    """The layout huggingface_hub writes: blobs, a snapshot of symlinks, refs/main."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir(exist_ok=True)
    for name, data in (("config.json", b"{}"), ("model.safetensors", weights)):
        blob = root / "blobs" / f"{commit}-{name}"
        blob.write_bytes(data)
        (snapshot / name).symlink_to(blob)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_models_are_fingerprinted_from_the_cache(tmp_path, monkeypatch):
    """Item 7: a hub model's revision is its cached snapshot's fingerprint, not "unknown"."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    one = _fake_hub_cache(tmp_path, "org/model", "a" * 40, b"weights one")
    two = _fake_hub_cache(tmp_path, "org/model", "b" * 40, b"weights two")  # refs/main -> b
    source = ModelSource("org/model", is_local=False, local_files_only=True)
    assert source_revision(source) == weights_fingerprint(two)[:32]
    assert source_revision(source, "a" * 40) == weights_fingerprint(one)[:32]
    missing = ModelSource("org/not-cached", is_local=False, local_files_only=True)
    assert source_revision(missing) == UNKNOWN_REVISION
