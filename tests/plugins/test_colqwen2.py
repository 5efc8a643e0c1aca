"""ColQwen2 / ColQwen2.5 through transformers' ColQwen2ForRetrieval: tiny random-weight
Qwen2-VL and Qwen2.5-VL models saved to directories and loaded back by name."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retriever.errors import UsageError
from retriever.geometry import grid_boxes
from retriever.plugin_host import get_registry
from retriever.search.scoring import maxsim_scores_many
from retriever.types import WHOLE_PAGE, Page

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", minversion="5")
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize  # noqa: E402

from plugins.colpali.encoder import ColVisionEncoder  # noqa: E402
from plugins.colpali.synthetic import save_synthetic  # noqa: E402

VARIANTS = {"colqwen2/v1.0": "colqwen2-tiny", "colqwen2.5/v0.2": "colqwen2.5-tiny"}
PAGE_SIZES = {"portrait": (100, 140), "landscape": (200, 90), "odd": (77, 131)}  # (w, h)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    name = request.param
    model_dir = save_synthetic(VARIANTS[name], tmp_path_factory.mktemp(VARIANTS[name]))
    return name, model_dir, ColVisionEncoder(name, model=str(model_dir))


def _page(image: Image.Image, number: int = 1) -> Page:
    return Page(doc_id="d", source="doc.pdf", page_number=number, width=image.width,
                height=image.height, image=image)


def _noise(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _image_rows(mv) -> np.ndarray:
    return np.flatnonzero(~np.all(mv.boxes == np.asarray(WHOLE_PAGE, np.float32), axis=1))


def test_created_through_the_registry(variant):
    name, model_dir, _ = variant
    created = get_registry().create("encoder", name, model=str(model_dir))
    assert (created.identity.name, created.dim, created.kind) == (name, 128, "multi")
    assert created.identity.options == {"model": str(model_dir)}
    expected_backbone = "Qwen2_5_VL" if "2.5" in name else "Qwen2VL"
    assert type(created.model.vlm).__name__ == f"{expected_backbone}Model"


def test_weights_of_another_family_are_refused(variant):
    _, model_dir, _ = variant
    with pytest.raises(UsageError, match="holds a 'colqwen2' model"):
        ColVisionEncoder("colpali/v1.3", model=str(model_dir))


@pytest.mark.parametrize("shape", sorted(PAGE_SIZES))
def test_boxes_follow_image_grid_thw(variant, shape):
    _, _, encoder = variant
    width, height = PAGE_SIZES[shape]
    image = _noise(width, height, 1)
    grid = encoder.processor.process_images([image])["image_grid_thw"][0].tolist()
    # smart_resize scales the WHOLE page to multiples of 28 px (no crop, no padding): the
    # processor's grid is exactly smart_resize's size in 14 px patches
    ip = encoder.processor.image_processor
    h, w = smart_resize(height, width, factor=28, min_pixels=ip.size["shortest_edge"],
                        max_pixels=ip.size["longest_edge"])
    assert grid == [1, h // 14, w // 14]
    (mv,) = encoder.encode_pages([_page(image)])
    rows = _image_rows(mv)
    assert rows.size == (h // 28) * (w // 28)
    np.testing.assert_allclose(mv.boxes[rows], grid_boxes(h // 28, w // 28), atol=1e-6)
    areas = np.prod(mv.boxes[rows, 2:] - mv.boxes[rows, :2], axis=1)
    assert areas.sum() == pytest.approx(1.0, abs=1e-5)
    assert mv.vectors.dtype == np.float32 and mv.dim == 128
    np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, atol=1e-5)
    # prompt and special tokens are kept, with the whole page as their box
    assert mv.n > rows.size


@pytest.mark.parametrize("size,cell", [((280, 280), (5, 2)), ((150, 230), (7, 4))])
def test_a_planted_patch_shows_up_in_the_vector_whose_box_covers_it(variant, size, cell):
    _, _, encoder = variant
    width, height = size
    grid = encoder.processor.process_images([Image.new("RGB", size)])["image_grid_thw"][0]
    rows_n, cols_n = int(grid[1]) // 2, int(grid[2]) // 2
    row, col = cell  # (7, 4) is the bottom-right cell of the odd page: nothing is cropped
    cw, ch = width / cols_n, height / rows_n
    image = Image.new("RGB", size, (200, 200, 200))
    ImageDraw.Draw(image).rectangle(
        [int(col * cw) + 1, int(row * ch) + 1, int((col + 1) * cw) - 1, int((row + 1) * ch) - 1],
        fill=(255, 0, 0))
    (mv,) = encoder.encode_pages([_page(image)])
    rows = _image_rows(mv)
    vectors = mv.vectors[rows]
    mean_sim = ((vectors @ vectors.T).sum(1) - 1.0) / (len(rows) - 1)
    odd_one = int(np.argmin(mean_sim))
    np.testing.assert_allclose(mv.boxes[rows][odd_one],
                               grid_boxes(rows_n, cols_n)[row * cols_n + col], atol=1e-6)


def test_deterministic_and_independent_of_batch_size(variant):
    name, model_dir, encoder = variant
    # different sizes: batches are padded, and the engine sorts pages by size
    pages = [_page(_noise(w, h, i), i + 1) for i, (w, h) in enumerate(PAGE_SIZES.values())]
    full = encoder.encode_pages(pages)
    again = encoder.encode_pages(pages)
    single = ColVisionEncoder(name, model=str(model_dir), batch_size=1).encode_pages(pages)
    three = ColVisionEncoder(name, model=str(model_dir), batch_size=3)
    for a, b, c, d in zip(full, again, single, three.encode_pages(pages)):
        np.testing.assert_array_equal(a.vectors, b.vectors)
        np.testing.assert_allclose(a.vectors, c.vectors, atol=1e-5)
        np.testing.assert_allclose(c.vectors, d.vectors, atol=1e-5)
        np.testing.assert_array_equal(a.boxes, c.boxes)
    assert [mv.n for mv in full] != [full[0].n] * 3  # the sizes really differ
    queries = ["what is the total amount due?", "hi", "quarterly revenue"]
    for a, b in zip(encoder.encode_queries(queries), three.encode_queries(queries)):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)


def test_parity_with_the_transformers_model(variant):
    _, model_dir, encoder = variant
    model = transformers.ColQwen2ForRetrieval.from_pretrained(model_dir).eval()
    processor = transformers.ColQwen2Processor.from_pretrained(model_dir)
    images = [_noise(120, 160, 5), _noise(190, 100, 6)]
    texts = ["Where is the IBAN?", "late interest"]
    with torch.inference_mode():
        inputs = processor.process_images(images)
        direct = model(**inputs).embeddings  # (2, seq, 128)
        q_inputs = processor.process_queries(texts)
        q_direct = model(**q_inputs).embeddings
    for i, mv in enumerate(encoder.encode_pages([_page(im) for im in images])):
        reference = direct[i][inputs["attention_mask"][i].bool()].numpy()
        np.testing.assert_allclose(mv.vectors, reference, atol=1e-5)
    for i, qv in enumerate(encoder.encode_queries(texts)):
        reference = q_direct[i][q_inputs["attention_mask"][i].bool()].numpy()
        assert qv.n == reference.shape[0]
        np.testing.assert_allclose(qv.vectors, reference, atol=1e-5)


def test_maxsim_equals_colpali_engine(variant):
    engine_processors = pytest.importorskip("colpali_engine.models")
    _, _, encoder = variant
    pages = encoder.encode_pages([_page(_noise(w, h, 9)) for w, h in PAGE_SIZES.values()])
    queries = encoder.encode_queries(["invoice total", "renewable energy", "x"])
    vectors = np.concatenate([mv.vectors for mv in pages])
    offsets = np.cumsum([0] + [mv.n for mv in pages])
    ours = maxsim_scores_many([q.vectors for q in queries], vectors, offsets)
    theirs = engine_processors.ColQwen2Processor.score_multi_vector(
        [torch.from_numpy(q.vectors) for q in queries],
        [torch.from_numpy(mv.vectors) for mv in pages], device="cpu")
    # colpali-engine pads ragged pages with zero vectors, which could only matter if every
    # similarity of a query vector with a page were negative; it is not the case here
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)
