"""ViTamin through open_clip: a random-init ViTamin-S saved with safetensors, loaded back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retriever.errors import UsageError
from retriever.plugin_host import get_registry
from retriever.types import Page

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.slow  # building ViTamin-S (62M parameters) takes seconds
GRID = 14  # ViTamin-S at 224 px: a 14 x 14 token grid, 16 px per token


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """The random-init model (the parity reference), its transform and its weights file."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViTamin-S", pretrained=None)
    model.eval()
    path = tmp_path_factory.mktemp("vitamin") / "vitamin-s.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                str(path))
    return model, preprocess, path


@pytest.fixture(scope="module")
def encoder(reference):
    return get_registry().create("encoder", "vitamin/s", checkpoint=str(reference[2]),
                                 patches=True, device="cpu", batch_size=4)


def _page(image: Image.Image, number: int = 1) -> Page:
    return Page(doc_id="doc", source="doc.png", page_number=number, width=image.width,
                height=image.height, image=image)


def _pages() -> list[Page]:
    rng = np.random.default_rng(0)
    sizes = [(448, 224), (150, 300), (97, 61)]
    return [_page(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), i + 1)
            for i, (w, h) in enumerate(sizes)]


def test_identity_and_flags(encoder, reference):
    identity = encoder.identity
    assert (identity.name, identity.kind, identity.dim) == ("vitamin/s", "multi", 384)
    assert identity.model_id == "open_clip/ViTamin-S"
    assert identity.options == {"checkpoint": str(reference[2]), "patches": True}
    assert len(identity.revision.removesuffix("+patches")) == 32
    assert (encoder.needs_image, encoder.needs_regions) == (True, False)


def test_parity_with_open_clip_and_batch_size_independence(encoder, reference):
    model, preprocess, _ = reference
    pages = _pages()
    texts = ["a photo of a red square", "invoice total due", ""]
    tokenizer = open_clip.get_tokenizer("ViTamin-S")
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(p.image) for p in pages]),
                                   normalize=True).numpy()  # (n, 384)
        text = model.encode_text(tokenizer(texts), normalize=True).numpy()  # (n, 384)
    ours = encoder.encode_pages(pages)
    np.testing.assert_allclose(np.stack([mv.vectors[0] for mv in ours]), image, atol=1e-5)
    queries = encoder.encode_queries(texts)
    np.testing.assert_allclose(np.concatenate([q.vectors for q in queries]), text, atol=1e-5)
    for mv in [*ours, *queries]:
        assert mv.vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, rtol=1e-5)
    encoder.engine.batch_size = 1
    try:
        again = encoder.encode_pages(pages)
    finally:
        encoder.engine.batch_size = 4
    for a, b in zip(ours, again):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)


def test_patch_boxes_tile_the_centre_crop_around_each_token(encoder):
    (mv,) = encoder.encode_pages([_page(Image.new("RGB", (448, 224), "gray"))])
    assert mv.n == 1 + GRID * GRID
    # 448x224 (short side already 224), crop 224 wide at 112: page x 0.25..0.75. The conv
    # stem centres token i on input pixel 16 i, so cell edges sit at 16 i - 7.5 px.
    edges = np.concatenate([[0.0], 16 * np.arange(1, GRID) - 7.5, [224.0]]) / 224
    xs, ys = 0.25 + 0.5 * edges, edges
    boxes = mv.boxes[1:].reshape(GRID, GRID, 4)
    np.testing.assert_allclose(boxes[0, :, 0], xs[:-1], atol=1e-6)
    np.testing.assert_allclose(boxes[0, :, 2], xs[1:], atol=1e-6)
    np.testing.assert_allclose(boxes[:, 0, 1], ys[:-1], atol=1e-6)
    np.testing.assert_allclose(boxes[:, 0, 3], ys[1:], atol=1e-6)
    area = ((mv.boxes[1:, 2] - mv.boxes[1:, 0]) * (mv.boxes[1:, 3] - mv.boxes[1:, 1])).sum()
    assert area == pytest.approx(0.5, abs=1e-5)  # tiles exactly the cropped area


@pytest.mark.parametrize("row, col", [(4, 9), (13, 0)])
def test_a_planted_red_square_is_found_by_its_patch(encoder, row, col):
    # 896x448 -> 448x224, crop x 112..336, i.e. page x 224..672; 2 page px per input px.
    # Token (row, col) is centred on input pixel (16 row, 16 col): plant a 16-input-px
    # square centred there.
    plain = Image.new("RGB", (896, 448), (128, 128, 128))
    image = plain.copy()
    cx, cy = 224 + 32 * col, 32 * row
    ImageDraw.Draw(image).rectangle([cx - 16, cy - 16, cx + 15, cy + 15], fill=(255, 0, 0))
    marked, background = encoder.encode_pages([_page(image), _page(plain)])
    change = 1.0 - (marked.vectors[1:] * background.vectors[1:]).sum(axis=1)  # (196,)
    hit = int(np.argmax(change))
    assert hit == row * GRID + col
    box = marked.boxes[1 + hit]
    assert box[0] <= cx / 896 <= box[2] and box[1] <= cy / 448 <= box[3]
    centroid = np.delete(marked.vectors[1:], hit, axis=0).mean(axis=0)
    assert int(np.argmin(marked.vectors[1:] @ centroid)) == hit  # the odd one out


def test_single_vector_mode(reference):
    single = get_registry().create("encoder", "vitamin/s", checkpoint=str(reference[2]),
                                   device="cpu")
    assert single.kind == "single" and single.identity.options == {
        "checkpoint": str(reference[2])}
    (mv,) = single.encode_pages([_page(Image.new("RGB", (300, 200), "white"))])
    assert (mv.n, mv.dim) == (1, 384)
    np.testing.assert_array_equal(mv.boxes, [[0.0, 0.0, 1.0, 1.0]])


def test_missing_weights_are_clear_errors(tmp_path: Path):
    registry = get_registry()
    with pytest.raises(UsageError, match="needs weights"):
        registry.create("encoder", "vitamin/s")
    with pytest.raises(UsageError, match="does not exist"):
        registry.create("encoder", "vitamin/b", checkpoint=str(tmp_path / "nope.safetensors"))
    with pytest.raises(UsageError, match="no open_clip checkpoint"):
        registry.create("encoder", "vitamin/b", checkpoint=str(tmp_path))


def test_a_bare_word_is_a_pretrained_tag_only_when_open_clip_knows_it(tmp_path, monkeypatch):
    """A mistyped relative path ("weights") was taken for a tag and sent to the hub."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="checkpoint 'weights' does not exist") as info:
        get_registry().create("encoder", "vitamin/s", checkpoint="weights")
    assert "open_clip tags for this model: datacomp1b" in info.value.hint
