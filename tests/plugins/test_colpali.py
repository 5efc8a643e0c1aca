"""ColPali through transformers' ColPaliForRetrieval: a tiny random-weight PaliGemma saved
to a directory and loaded back through the registry, as a user's weights would be."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from repo_paths import REPO, SAMPLES
from retriever import Retriever
from retriever.errors import RetrieverError, UsageError
from retriever.geometry import grid_boxes
from retriever.model_source import weights_fingerprint
from retriever.plugin_host import get_registry
from retriever.search.scoring import maxsim_scores_many
from retriever.types import WHOLE_PAGE, Page

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", minversion="5")
from plugins.colpali.encoder import ColVisionEncoder  # noqa: E402
from plugins.colpali.synthetic import save_synthetic  # noqa: E402

GRID = 8  # the tiny preset: 64 px SigLIP input in 8 px patches


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_synthetic("colpali-tiny", tmp_path_factory.mktemp("colpali-tiny"))


@pytest.fixture(scope="module")
def encoder(model_dir):
    return ColVisionEncoder("colpali/v1.3", model=str(model_dir))


def _page(image: Image.Image, number: int = 1) -> Page:
    return Page(doc_id="d", source="doc.pdf", page_number=number, width=image.width,
                height=image.height, image=image)


def _noise(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _image_rows(mv) -> np.ndarray:
    """Rows whose box is a patch cell (not the whole page)."""
    return np.flatnonzero(~np.all(mv.boxes == np.asarray(WHOLE_PAGE, np.float32), axis=1))


def test_plugin_registers_all_names_without_importing_torch():
    code = ("import sys, plugins.colpali as p; specs = []; "
            "p.register_encoders(register=specs.append); print([s.name for s in specs]); "
            "sys.exit(1 if 'torch' in sys.modules or 'transformers' in sys.modules else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, env={"RETRIEVER_LOAD_PLUGINS": "", "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr
    for name in ("colpali/v1.3", "colqwen2/v1.0", "colqwen2.5/v0.2"):
        assert name in out.stdout


def test_created_through_the_registry(model_dir):
    created = get_registry().create("encoder", "colpali/v1.3", model=str(model_dir))
    identity = created.identity
    assert (identity.name, identity.dim, identity.kind) == ("colpali/v1.3", 128, "multi")
    # a stable id (the name's checkpoint), not the directory: the fingerprint tells weights apart
    assert identity.model_id == "vidore/colpali-v1.3-hf"
    assert identity.options == {"model": str(model_dir)}
    assert identity.revision == weights_fingerprint(model_dir)[:32]
    assert created.needs_image and not created.needs_regions and created.dpi == 120
    assert str(created.engine.device) == "cpu" and created.engine.dtype == torch.float32


def test_the_same_weights_from_another_directory_are_the_same_encoder(model_dir, tmp_path):
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "copy")
    moved = get_registry().create("encoder", "colpali/v1.3", model=str(copy)).identity
    here = get_registry().create("encoder", "colpali/v1.3", model=str(model_dir)).identity
    assert (moved.model_id, moved.revision) == (here.model_id, here.revision)
    assert moved.same_vectors_as(here)


def test_trust_remote_code_strings_are_parsed_never_bool_ed(model_dir):
    registry = get_registry()
    assert registry.create("encoder", "colpali/v1.3", model=str(model_dir),
                           trust_remote_code="false").trust_remote_code is False
    with pytest.raises(UsageError, match="trust_remote_code='maybe'"):
        registry.create("encoder", "colpali/v1.3", model=str(model_dir),
                        trust_remote_code="maybe")
    with pytest.raises(UsageError, match="trust_remote_code must be true or false"):
        ColVisionEncoder("colpali/v1.3", model=str(model_dir), trust_remote_code="false")


def test_trust_remote_code_is_off_unless_asked_and_never_stored(model_dir):
    import inspect

    assert inspect.signature(ColVisionEncoder).parameters["trust_remote_code"].default is False
    trusted = ColVisionEncoder("colpali/v1.3", model=str(model_dir), trust_remote_code=True)
    assert trusted.identity.options == {"model": str(model_dir)}


def test_page_vectors_shapes_norms_and_boxes(encoder):
    pages = [_page(_noise(w, h, i), i + 1) for i, (w, h) in enumerate([(120, 160), (210, 90)])]
    for mv in encoder.encode_pages(pages):
        image_rows = _image_rows(mv)
        assert mv.vectors.dtype == np.float32 and mv.dim == 128
        assert image_rows.size == GRID * GRID and mv.n > GRID * GRID  # + the text prompt
        np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, atol=1e-5)
        # PaliGemma stretches the whole page to the square input: the patch boxes are an
        # exact 8 x 8 grid over the page, row-major, tiling it without gaps or overlaps
        cells = mv.boxes[image_rows].astype(np.float64)
        np.testing.assert_allclose(cells, grid_boxes(GRID, GRID), atol=1e-7)
        areas = (cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])
        assert areas.sum() == pytest.approx(1.0)
        ix = np.minimum(cells[:, None, 2], cells[None, :, 2]) - np.maximum(cells[:, None, 0],
                                                                           cells[None, :, 0])
        iy = np.minimum(cells[:, None, 3], cells[None, :, 3]) - np.maximum(cells[:, None, 1],
                                                                           cells[None, :, 1])
        overlap = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        np.fill_diagonal(overlap, 0)
        assert overlap.max() < 1e-9


def test_deterministic_and_independent_of_batch_size(encoder, model_dir):
    pages = [_page(_noise(100 + 20 * i, 140 - 10 * i, i), i + 1) for i in range(3)]
    full = encoder.encode_pages(pages)
    again = encoder.encode_pages(pages)
    one_by_one = ColVisionEncoder("colpali/v1.3", model=str(model_dir), batch_size=1)
    single = one_by_one.encode_pages(pages)
    three = ColVisionEncoder("colpali/v1.3", model=str(model_dir), batch_size=3)
    for a, b, c, d in zip(full, again, single, three.encode_pages(pages)):
        np.testing.assert_array_equal(a.vectors, b.vectors)
        np.testing.assert_allclose(a.vectors, c.vectors, atol=1e-5)
        np.testing.assert_allclose(c.vectors, d.vectors, atol=1e-5)
        np.testing.assert_array_equal(a.boxes, c.boxes)
    queries = ["what is the total amount due?", "hi", "quarterly revenue by region"]
    for a, b in zip(encoder.encode_queries(queries), one_by_one.encode_queries(queries)):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)


def test_parity_with_the_transformers_model(encoder, model_dir):
    model = transformers.ColPaliForRetrieval.from_pretrained(model_dir).eval()
    processor = transformers.ColPaliProcessor.from_pretrained(model_dir)
    images = [_noise(90, 130, 7), _noise(150, 100, 8)]
    with torch.inference_mode():
        inputs = processor.process_images(images)
        direct = model(**inputs).embeddings  # (2, seq, 128)
        texts = ["Which invoice is overdue?", "revenue"]
        q_inputs = processor.process_queries(texts)
        q_direct = model(**q_inputs).embeddings
    for i, mv in enumerate(encoder.encode_pages([_page(im) for im in images])):
        reference = direct[i][inputs["attention_mask"][i].bool()].numpy()
        np.testing.assert_allclose(mv.vectors, reference, atol=1e-5)
    for i, qv in enumerate(encoder.encode_queries(texts)):
        reference = q_direct[i][q_inputs["attention_mask"][i].bool()].numpy()
        # the processor's query format: prefix, the query and 10 augmentation tokens
        assert qv.n == reference.shape[0] and qv.n >= 10
        np.testing.assert_allclose(qv.vectors, reference, atol=1e-5)
        np.testing.assert_array_equal(qv.boxes, np.tile(WHOLE_PAGE, (qv.n, 1)))


def test_maxsim_equals_colpali_engine(encoder):
    engine_processors = pytest.importorskip("colpali_engine.models")
    pages = encoder.encode_pages([_page(_noise(100, 130, i), i + 1) for i in range(4)])
    queries = encoder.encode_queries(["invoice total", "what is the late payment interest?"])
    vectors = np.concatenate([mv.vectors for mv in pages])
    offsets = np.cumsum([0] + [mv.n for mv in pages])
    ours = maxsim_scores_many([q.vectors for q in queries], vectors, offsets)
    theirs = engine_processors.ColPaliProcessor.score_multi_vector(
        [torch.from_numpy(q.vectors) for q in queries],
        [torch.from_numpy(mv.vectors) for mv in pages], device="cpu")
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,cell", [((160, 160), (2, 5)), ((240, 120), (6, 1))])
def test_a_planted_patch_shows_up_in_the_vector_whose_box_covers_it(encoder, size, cell):
    width, height = size
    image = Image.new("RGB", size, (200, 200, 200))
    row, col = cell
    cw, ch = width / GRID, height / GRID
    ImageDraw.Draw(image).rectangle(
        [col * cw, row * ch, (col + 1) * cw - 1, (row + 1) * ch - 1], fill=(255, 0, 0))
    (mv,) = encoder.encode_pages([_page(image)])
    rows = _image_rows(mv)
    vectors = mv.vectors[rows]
    sims = vectors @ vectors.T
    mean_sim = (sims.sum(1) - 1.0) / (len(rows) - 1)  # each vector vs all the others
    odd_one = int(np.argmin(mean_sim))
    expected = grid_boxes(GRID, GRID)[row * GRID + col]
    np.testing.assert_allclose(mv.boxes[rows][odd_one], expected, atol=1e-6)


def test_bfloat16_runs_on_the_cpu_close_to_float32(encoder, model_dir):
    bf16 = ColVisionEncoder("colpali/v1.3", model=str(model_dir), dtype="bfloat16")
    assert bf16.engine.dtype == torch.bfloat16
    pages = [_page(_noise(100, 120, 3))]
    (a,), (b,) = encoder.encode_pages(pages), bf16.encode_pages(pages)
    assert b.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b.vectors, axis=1), 1.0, atol=1e-5)
    assert float(np.mean(np.sum(a.vectors * b.vectors, axis=1))) > 0.95


def test_clear_errors(tmp_path, monkeypatch, encoder):
    with pytest.raises(UsageError, match="does not exist"):
        ColVisionEncoder("colpali/v1.3", model=str(tmp_path / "no" / "such" / "dir"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RetrieverError, match="cannot load colpali/v1.3"):
        ColVisionEncoder("colpali/v1.3")  # the default hub id, not in any cache here
    with pytest.raises(UsageError, match="unknown ColVision encoder"):
        ColVisionEncoder("colpali/v9")
    blank = Page(doc_id="d", source="doc.pdf", page_number=3, width=10, height=10)
    with pytest.raises(RetrieverError, match="doc.pdf page 3: no image"):
        encoder.encode_pages([blank])
    assert encoder.encode_pages([]) == [] and encoder.encode_queries([]) == []


@pytest.mark.slow
def test_index_and_search_end_to_end(tmp_path, model_dir):
    options = {"model": str(model_dir)}
    with Retriever("cp", data_dir=tmp_path, encoder="colpali/v1.3", encoder_options=options,
                   ocr=None) as r:
        report = r.index([SAMPLES / "slide.pdf", SAMPLES / "invoice.pdf"])
        assert report.ok and report.pages == 2
        hits = r.search("What is the total amount due on the invoice?", k=2)
    # random weights: check the structure, not which page wins
    assert [h.rank for h in hits] == [1, 2]
    assert {h.source.rsplit("/", 1)[-1] for h in hits} == {"slide.pdf", "invoice.pdf"}
    for hit in hits:
        data = hit.to_dict()
        assert {"rank", "score", "doc_id", "source", "page", "page_width", "page_height",
                "regions"} <= set(data)
        assert hit.page == 1 and hit.page_width > 0 and hit.page_height > 0
        assert hit.regions, "regions come from the PDF text layer"
        for region in hit.regions:
            assert 0 <= region.bbox[0] <= region.bbox[2] <= 1
            assert 0 <= region.bbox[1] <= region.bbox[3] <= 1
            assert region.text.strip() and np.isfinite(region.score)
        json.dumps(data)
    # reopening rebuilds the encoder from the manifest (model directory included)
    with Retriever("cp", data_dir=tmp_path) as again:
        assert again.encoder.identity.options == options
        assert len(again.search("Project Heron timeline", k=1)) == 1
