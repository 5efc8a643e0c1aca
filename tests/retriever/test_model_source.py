from __future__ import annotations

import pytest

from retriever.errors import UsageError
from retriever.model_source import resolve_model_source, weights_fingerprint


def test_local_directory_hub_id_and_offline(tmp_path, monkeypatch):
    local = resolve_model_source(tmp_path)
    assert local.is_local and local.local_files_only
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    hub = resolve_model_source("vidore/colpali-v1.3")
    assert not hub.is_local and not hub.local_files_only
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_source("vidore/colpali-v1.3").local_files_only
    with pytest.raises(UsageError, match="does not exist"):
        resolve_model_source(tmp_path / "missing" / "model")
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(UsageError, match="is a file"):
        resolve_model_source(tmp_path / "weights.safetensors")


def test_fingerprint_follows_weight_bytes_not_location(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights")
        (d / "config.json").write_text("{}")
    assert weights_fingerprint(a) == weights_fingerprint(b)
    (b / "model.safetensors").write_bytes(b"other weights")
    assert weights_fingerprint(a) != weights_fingerprint(b)
