"""CLIP and SigLIP encoders: tiny random-weight checkpoints loaded through the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from repo_paths import SAMPLES
from retriever.errors import UsageError
from retriever.geometry import grid_boxes
from retriever.plugin_host import get_registry
from retriever.types import Hit, Page

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("open_clip")  # the CLIP BPE vocabulary ships inside it
from tiny_vit import IMAGE_SIZE, PATCH, build_tiny_clip, build_tiny_siglip  # noqa: E402

GRID = IMAGE_SIZE // PATCH  # 4 x 4 patches
FAMILIES = {"clip": ("clip/vit-b-16", build_tiny_clip), "siglip": ("siglip/base-patch16-224",
                                                                  build_tiny_siglip)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-vit")
    return {family: build(root / family) for family, (_, build) in FAMILIES.items()}


@pytest.fixture(params=sorted(FAMILIES))
def family(request) -> str:
    return request.param


def _encoder(checkpoints: dict[str, Path], family: str, **options):
    name = FAMILIES[family][0]
    return get_registry().create("encoder", name, model=str(checkpoints[family]), **options)


def _page(image: Image.Image, number: int = 1) -> Page:
    return Page(doc_id="doc", source="doc.png", page_number=number, width=image.width,
                height=image.height, image=image)


def _pages() -> list[Page]:
    rng = np.random.default_rng(0)
    sizes = [(200, 100), (60, 90), (64, 64), (333, 500), (90, 40)]  # landscape, portrait...
    return [_page(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), i + 1)
            for i, (w, h) in enumerate(sizes)]


def test_created_through_the_registry_with_a_stable_identity(checkpoints, family):
    encoder = _encoder(checkpoints, family)
    identity = encoder.identity
    assert identity.name == FAMILIES[family][0]
    assert (identity.kind, identity.dim) == ("single", encoder.dim)
    assert identity.options == {"model": str(checkpoints[family])}
    assert identity.revision == _encoder(checkpoints, family).identity.revision
    assert (encoder.needs_image, encoder.needs_regions, encoder.dpi) == (True, False, 100)
    patched = _encoder(checkpoints, family, patches="true")  # as the CLI passes it
    assert patched.kind == "multi" and patched.identity.options["patches"] is True
    assert not patched.identity.same_vectors_as(identity)


def test_one_normalized_vector_per_page_and_query(checkpoints, family):
    encoder = _encoder(checkpoints, family)
    pages = encoder.encode_pages(_pages())
    queries = encoder.encode_queries(["a photo of a red square", "invoice total due", ""])
    for mv in [*pages, *queries]:
        assert (mv.n, mv.dim) == (1, encoder.dim) and mv.vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(mv.boxes, [[0.0, 0.0, 1.0, 1.0]])
    assert encoder.encode_queries([]) == []


def test_deterministic_and_independent_of_batch_size(checkpoints, family):
    pages = _pages()
    texts = ["short", "a much longer query about the invoice total due", "a red square"]
    full = _encoder(checkpoints, family)
    one = _encoder(checkpoints, family, batch_size=1, patches=False)
    a, b, c = full.encode_pages(pages), one.encode_pages(pages), full.encode_pages(pages)
    for x, y, z in zip(a, b, c):
        np.testing.assert_allclose(x.vectors, y.vectors, atol=1e-5)
        np.testing.assert_array_equal(x.vectors, z.vectors)
    for x, y in zip(full.encode_queries(texts), one.encode_queries(texts)):
        np.testing.assert_allclose(x.vectors, y.vectors, atol=1e-5)


def test_parity_with_transformers_features(checkpoints, family):
    directory = str(checkpoints[family])
    model = transformers.AutoModel.from_pretrained(directory).eval()
    processor = transformers.AutoProcessor.from_pretrained(directory)
    pages = _pages()
    texts = ["a photo of a red square", "invoice total due"]
    padding = "max_length" if family == "siglip" else True
    length = model.config.text_config.max_position_embeddings
    with torch.no_grad():
        pixels = processor(images=[p.image for p in pages], return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels).pooler_output  # (n, d)
        tokens = processor.tokenizer(texts, padding=padding, max_length=length,
                                     truncation=True, return_tensors="pt")
        text = model.get_text_features(**tokens).pooler_output  # (n, d)
    image = torch.nn.functional.normalize(image, dim=-1).numpy()
    text = torch.nn.functional.normalize(text, dim=-1).numpy()
    encoder = _encoder(checkpoints, family)
    ours_pages = np.concatenate([mv.vectors for mv in encoder.encode_pages(pages)])
    ours_texts = np.concatenate([mv.vectors for mv in encoder.encode_queries(texts)])
    np.testing.assert_allclose(ours_pages, image, atol=1e-5)
    np.testing.assert_allclose(ours_texts, text, atol=1e-5)


def test_patch_boxes_tile_exactly_the_area_the_model_sees(checkpoints, family):
    encoder = _encoder(checkpoints, family, patches=True)
    (landscape, portrait) = encoder.encode_pages(
        [_page(Image.new("RGB", (200, 100), "gray")), _page(Image.new("RGB", (60, 90), "gray"))])
    # CLIP: shortest edge to 32 (200x100 -> 64x32, 60x90 -> 32x48), centre crop 32x32;
    # SigLIP: the whole page squashed to 32x32.
    expected = {"clip": [(0.25, 0.0, 0.75, 1.0), (0.0, 8 / 48, 1.0, 40 / 48)],
                "siglip": [(0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)]}[family]
    for mv, window in zip((landscape, portrait), expected):
        assert mv.n == 1 + GRID * GRID and mv.dim == encoder.dim
        np.testing.assert_array_equal(mv.boxes[0], [0.0, 0.0, 1.0, 1.0])  # the pooled vector
        np.testing.assert_allclose(mv.boxes[1:], grid_boxes(GRID, GRID, window), atol=1e-6)
        cells = mv.boxes[1:]
        area = ((cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])).sum()
        assert area == pytest.approx((window[2] - window[0]) * (window[3] - window[1]), abs=1e-5)
        np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, rtol=1e-5)


def test_cropped_margins_have_no_vectors_and_do_not_change_any(checkpoints):
    encoder = _encoder(checkpoints, "clip", patches=True)
    plain = Image.new("RGB", (200, 100), (128, 128, 128))
    marked = plain.copy()
    ImageDraw.Draw(marked).rectangle([0, 0, 30, 99], fill=(255, 0, 0))  # inside x < 0.25
    a, b = encoder.encode_pages([_page(plain), _page(marked)])
    assert (a.boxes[1:, 0] >= 0.25 - 1e-6).all() and (a.boxes[1:, 2] <= 0.75 + 1e-6).all()
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-6)


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_a_planted_red_square_is_found_by_its_patch(checkpoints, family_name):
    encoder = _encoder(checkpoints, family_name, patches=True)
    # CLIP: a 128x64 page shows its middle half (x 32..96), 4x4 cells of 16x16 px;
    # SigLIP: a 64x64 page is squashed whole, 4x4 cells of 16x16 px.
    width, x0 = (128, 32) if family_name == "clip" else (64, 0)
    row, col = 1, 2
    image = Image.new("RGB", (width, 64), (128, 128, 128))
    left, top = x0 + 16 * col, 16 * row
    ImageDraw.Draw(image).rectangle([left, top, left + 15, top + 15], fill=(255, 0, 0))
    (mv,) = encoder.encode_pages([_page(image)])
    patches, boxes = mv.vectors[1:], mv.boxes[1:]
    background = np.delete(patches, row * GRID + col, axis=0).mean(axis=0)
    odd_one = int(np.argmin(patches @ background))
    assert odd_one == row * GRID + col
    expected = (left / width, top / 64, (left + 16) / width, (top + 16) / 64)
    np.testing.assert_allclose(boxes[odd_one], expected, atol=1e-6)


def test_bad_options_are_clear_errors(checkpoints, tmp_path):
    with pytest.raises(UsageError, match="siglip"):
        get_registry().create("encoder", "clip/vit-b-16", model=str(checkpoints["siglip"]))
    with pytest.raises(UsageError):
        get_registry().create("encoder", "clip/vit-b-16", model=str(tmp_path / "missing" / "x"))
    with pytest.raises(UsageError, match="patches='maybe' is invalid"):
        _encoder(checkpoints, "clip", patches="maybe")
    with pytest.raises(UsageError, match="is not a directory") as info:  # never a hub guess
        get_registry().create("encoder", "clip/vit-b-16", model="openai/clip-vit-typo")
    assert "hf:openai/clip-vit-typo" in info.value.hint


def test_registering_the_plugin_imports_no_torch():
    import subprocess
    import sys

    from repo_paths import REPO

    code = ("import sys, plugins.clip, plugins.vitamin; "
            "print(any(m in sys.modules for m in ('torch', 'transformers', 'open_clip')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == "False"


@pytest.mark.slow
def test_end_to_end_index_and_search(checkpoints, tmp_path, family):
    from retriever import Retriever

    name = FAMILIES[family][0]
    options = {"model": str(checkpoints[family]), "patches": family == "siglip"}
    sources = [SAMPLES / "slide.pdf", SAMPLES / "scanned-letter.png"]
    with Retriever("vit", data_dir=tmp_path, encoder=name, encoder_options=options) as r:
        report = r.index(sources)
        assert report.ok and len(report.indexed) == 2
        assert r.info()["encoder"]["name"] == name
    with Retriever("vit", data_dir=tmp_path) as r:  # reopened from the stored manifest
        hits = r.search("quarterly results", k=5)
    assert len(hits) == report.pages and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert {Path(h.source).name for h in hits} == {"slide.pdf", "scanned-letter.png"}
    for hit in hits:
        assert isinstance(hit, Hit) and hit.page >= 1 and hit.page_width > 0
        data = hit.to_dict()
        assert {"rank", "score", "doc_id", "source", "page", "page_width", "page_height",
                "regions"} <= set(data)
        for region in data["regions"]:
            assert len(region["bbox"]) == 4 and isinstance(region["text"], str)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
