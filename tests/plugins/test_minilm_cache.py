"""text/minilm's cache: weights fingerprints remembered by file state, atomic writes."""

from __future__ import annotations

import os

import pytest

from plugins.text import cache
from retriever.model_source import resolve_model_source, source_revision


@pytest.fixture()
def weights(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVER_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "model.safetensors").write_bytes(os.urandom(4096))
    return model


def test_the_fingerprint_is_the_real_one_then_read_back(weights, monkeypatch):
    source = resolve_model_source(str(weights))
    first = cache.cached_revision(source, str(weights))
    assert first == source_revision(source)

    def rehash(*args, **kwargs):
        raise AssertionError("hashed the weights again")

    monkeypatch.setattr(cache, "source_revision", rehash)
    assert cache.cached_revision(source, str(weights)) == first


def test_rewritten_weights_are_hashed_again(weights):
    source = resolve_model_source(str(weights))
    first = cache.cached_revision(source, str(weights))
    file = weights / "model.safetensors"
    stat = file.stat()
    file.write_bytes(os.urandom(4096))  # same size; new content, new mtime
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = cache.cached_revision(source, str(weights))
    assert second != first and second == source_revision(source)


def test_atomic_path_publishes_whole_files_only(tmp_path):
    final = tmp_path / "d" / "f.txt"
    with cache.atomic_path(final) as tmp:
        tmp.write_text("complete")
        assert not final.exists()
    assert final.read_text() == "complete"
    with pytest.raises(RuntimeError), cache.atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert final.read_text() == "complete" and os.listdir(final.parent) == ["f.txt"]
