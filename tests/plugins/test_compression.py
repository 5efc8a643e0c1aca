"""The built-in compressors on real-size ColPali-shaped pages: what they keep (vectors,
boxes, counts, page-level vectors) and that grounding still finds the planted region."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.compression.pool import cluster_labels
from retriever.compression import compress_all, is_local, merged, region_of
from retriever.grounding import ground
from retriever.plugin_host import get_registry
from retriever.types import MultiVector, Region

GRID = 32  # a 32 x 32 patch grid, like ColPali's on a 448 px page
DIM = 128
GLOBALS = 6
#: three paragraphs of the page, as rows of the grid (x from 4 to 28)
PARAGRAPHS = ((4, 9), (12, 18), (21, 27))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def cell_boxes() -> np.ndarray:
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    return (np.stack([xs, ys, xs + 1, ys + 1], -1).reshape(-1, 4) / GRID).astype(np.float32)


def paragraph_cells(index: int) -> np.ndarray:
    top, bottom = PARAGRAPHS[index]
    return np.array([y * GRID + x for y in range(top, bottom) for x in range(4, 28)])


def grid_page(seed: int = 0) -> tuple[MultiVector, list[Region]]:
    """1024 patch vectors + 6 page-level ones: blank paper near two background directions,
    each paragraph's patches near its own three topics; and the paragraphs as regions."""
    rng = np.random.default_rng(seed)
    background = _unit(rng.standard_normal((2, DIM)))
    vectors = background[rng.integers(2, size=GRID * GRID)] \
        + rng.standard_normal((GRID * GRID, DIM)) * 0.25 / np.sqrt(DIM)
    regions = []
    for p in range(len(PARAGRAPHS)):
        cells = paragraph_cells(p)
        topics = _unit(rng.standard_normal((3, DIM)))
        vectors[cells] = topics[rng.integers(3, size=cells.size)] \
            + rng.standard_normal((cells.size, DIM)) * 0.6 / np.sqrt(DIM)
        top, bottom = PARAGRAPHS[p]
        regions.append(Region((4 / GRID, top / GRID, 28 / GRID, bottom / GRID),
                              f"paragraph {p}", source="text_layer"))
    page_level = _unit(rng.standard_normal((GLOBALS, DIM)))
    boxes = np.concatenate([cell_boxes(), np.tile([0.0, 0.0, 1.0, 1.0], (GLOBALS, 1))])
    return MultiVector(_unit(np.concatenate([vectors, page_level])), boxes), regions


def planted_query(page: MultiVector, paragraph: int, seed: int = 1) -> MultiVector:
    """16 of the paragraph's patch vectors plus noise: relevance planted in one region."""
    rng = np.random.default_rng(seed)
    rows = page.vectors[rng.choice(paragraph_cells(paragraph), size=16, replace=False)]
    noisy = rows + rng.standard_normal(rows.shape).astype(np.float32) * 0.5 / np.sqrt(DIM)
    return MultiVector.normalized(noisy, np.tile([0, 0, 1, 1], (16, 1)))


def compressor(name: str, **options):
    return get_registry().create("compressor", name, **options)


@pytest.fixture(scope="module")
def page():
    return grid_page()


#: name -> vectors expected at the default factor: pool and prune keep n/3 of the 1024
#: patch vectors, merge one per 2 x 2 window; the 6 page-level vectors always stay
EXPECTED = {"pool": 342 + GLOBALS, "prune": 342 + GLOBALS, "merge": 256 + GLOBALS}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_compressor_keeps_boxes_counts_and_page_level_vectors(page, name):
    mv, _ = page
    out = compressor(name).compress(mv)
    assert out.n == EXPECTED[name] and out.dim == DIM
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.counts is not None and int(out.counts.sum()) == mv.n
    # the page-level vectors come out last, as they went in, each counting for itself
    np.testing.assert_allclose(out.vectors[-GLOBALS:], mv.vectors[-GLOBALS:], atol=1e-6)
    assert (out.counts[-GLOBALS:] == 1).all()
    # every other vector's box is the union of its members' cells: together they cover
    # the page (a cluster of blank paper from all over it may span the whole page)
    boxes = out.boxes[:-GLOBALS]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert (area >= 1 / GRID**2 - 1e-7).all()
    centres = (cell_boxes()[:, :2] + cell_boxes()[:, 2:]) / 2
    covered = np.zeros(GRID * GRID, bool)
    for box in boxes:
        covered |= ((centres >= box[:2]) & (centres <= box[2:])).all(axis=1)
    assert covered.all()


def test_merge_is_the_normalized_mean_of_each_window(page):
    mv, _ = page
    out = compressor("merge", factor=2).compress(mv)
    first = out.boxes[0]  # the top-left 2 x 2 window
    np.testing.assert_allclose(first, [0, 0, 2 / GRID, 2 / GRID], atol=1e-6)
    members = [0, 1, GRID, GRID + 1]
    mean = mv.vectors[members].astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(out.vectors[0], mean / np.linalg.norm(mean), atol=1e-5)
    assert out.counts[0] == 4
    widths = out.boxes[is_local(out.boxes), 2] - out.boxes[is_local(out.boxes), 0]
    np.testing.assert_allclose(widths, 2 / GRID, atol=1e-6)  # every window 2 cells wide


def test_pool_groups_identical_vectors_together():
    rng = np.random.default_rng(3)
    directions = _unit(rng.standard_normal((20, DIM)))
    vectors = np.repeat(directions, 3, axis=0)  # 20 groups of 3 identical vectors
    boxes = cell_boxes()[:60]
    out = compressor("pool", factor=3).compress(MultiVector(vectors, boxes))
    assert out.n == 20 and (out.counts == 3).all()
    np.testing.assert_allclose(np.sort(out.vectors @ directions.T, axis=1)[:, -1], 1.0,
                               atol=1e-5)


def test_prune_keeps_the_content_and_fuses_the_background(page):
    mv, _ = page
    out = compressor("prune").compress(mv)
    content = np.concatenate([paragraph_cells(p) for p in range(len(PARAGRAPHS))])
    # each content patch survives as it is (the page has 432 of them, 341 are kept)
    kept = (out.vectors[out.counts == 1] @ mv.vectors[content].T).max(axis=0) > 0.9999
    assert kept.sum() == 341 - 0  # the kept slots hold content patches only
    assert out.counts.max() == mv.n - GLOBALS - 341  # the rest fused into one vector


def test_prune_with_the_paragraphs_fuses_blank_paper_first(page):
    mv, regions = page
    # blank paper that points many ways (shading, rules, scan noise): no one dominant
    # direction tells it from the paragraphs
    rng = np.random.default_rng(8)
    vectors = mv.vectors.copy()
    text = np.concatenate([paragraph_cells(p) for p in range(len(PARAGRAPHS))])
    blank = np.setdiff1d(np.arange(GRID * GRID), text)
    vectors[blank] = _unit(rng.standard_normal((12, DIM)))[rng.integers(12, size=blank.size)]
    mv = MultiVector(_unit(vectors), mv.boxes)
    out = compressor("prune").compress(mv, regions=regions)
    alone = (out.counts == 1) & is_local(out.boxes)  # the page-level vectors aside
    # every vector kept as it is lies inside a paragraph, and the paragraphs (408 patches)
    # fill every kept slot; without them some blank paper is kept instead
    assert alone.sum() == 341
    assert all(_cells_inside(box, regions) for box in out.boxes[alone])
    for plain in (compressor("prune").compress(mv),
                  compressor("prune", within_regions=False).compress(mv, regions=regions)):
        kept = plain.boxes[(plain.counts == 1) & is_local(plain.boxes)]
        assert not all(_cells_inside(box, regions) for box in kept)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_short_pages_are_left_as_they_are(name):
    mv = MultiVector(_unit(np.random.default_rng(0).standard_normal((12, DIM))), cell_boxes()[:12])
    assert compressor(name).compress(mv) is mv  # fewer than min_keep (16) vectors


def test_merged_keeps_reading_order_and_lone_vectors():
    mv = MultiVector(_unit(np.eye(4, DIM, dtype=np.float32) + 0.1), cell_boxes()[:4])
    out = merged(mv, np.array([5, -1, 5, 2]))
    assert out.n == 3 and out.counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(out.boxes[0], [0, 0, 3 / GRID, 1 / GRID], atol=1e-6)
    # groups in the order of their first member: the lone vector (1) before group 2 (3)
    np.testing.assert_allclose(out.vectors[1], mv.vectors[1], atol=1e-6)
    np.testing.assert_allclose(out.vectors[2], mv.vectors[3], atol=1e-6)


#: how far a region's score may move: pool and prune keep the paragraph's patches (as
#: tight clusters or as they are); merge averages each 2 x 2 window, whose patches are on
#: different topics, so the planted paragraph's score drops more (but stays far ahead)
TOLERANCE = {"pool": 0.03, "prune": 0.03, "merge": 0.15}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("paragraph", range(len(PARAGRAPHS)))
def test_grounding_after_compression_stays_close(page, name, paragraph):
    """Relevance planted in one paragraph: it is still the best region after compressing,
    far ahead of the others, and every region's score moves little."""
    mv, regions = page
    query = planted_query(mv, paragraph)
    before = ground(query, mv, regions, max_regions=3, select="top_k")
    after = ground(query, compressor(name).compress(mv), regions, max_regions=3,
                   select="top_k")
    assert before[0].text == after[0].text == f"paragraph {paragraph}"
    assert after[0].score - after[1].score > 0.5 * (before[0].score - before[1].score)
    scores_after = {h.text: h.score for h in after}
    assert scores_after.keys() == {h.text for h in before}
    for hit in before:
        assert abs(scores_after[hit.text] - hit.score) < TOLERANCE[name], (hit.text, hit.score)


def test_region_of_takes_the_paragraph_a_box_overlaps_most():
    regions = [Region((0.1, 0.1, 0.5, 0.2), "a"), Region((0.1, 0.2, 0.5, 0.3), "b")]
    boxes = np.array([[0.2, 0.12, 0.3, 0.18],    # inside a
                      [0.1, 0.2, 0.5, 0.3],      # exactly b, sharing a's bottom edge
                      [0.2, 0.18, 0.3, 0.28],    # straddles both, more of it in b
                      [0.7, 0.7, 0.8, 0.8]])     # on blank paper
    assert region_of(boxes, regions).tolist() == [0, 1, 1, -1]
    assert region_of(boxes, []).tolist() == [-1] * 4


def _cells_inside(box, regions) -> set[int]:
    """Indices of the regions that contain ``box`` entirely (within float rounding)."""
    return {i for i, r in enumerate(regions)
            if box[0] >= r.bbox[0] - 1e-6 and box[1] >= r.bbox[1] - 1e-6
            and box[2] <= r.bbox[2] + 1e-6 and box[3] <= r.bbox[3] + 1e-6}


def _paragraph_patches_kept_apart(out: MultiVector, regions) -> int:
    """Patches in clusters whose box lies inside one paragraph. Every cell inside a
    paragraph's box is that paragraph's, so a paragraph patch merged with blank paper or
    with another paragraph puts its cluster's box outside, and is not counted."""
    local = is_local(out.boxes)
    return sum(int(count) for box, count in zip(out.boxes[local], out.counts[local])
               if _cells_inside(box, regions))


def test_pool_keeps_each_cluster_inside_one_paragraph(page):
    mv, regions = page
    # the three paragraphs on the same topics, so that similarity alone would pool
    # patches of different paragraphs together
    rng = np.random.default_rng(4)
    vectors = mv.vectors.copy()
    first = paragraph_cells(0)
    for p in (1, 2):
        cells = paragraph_cells(p)
        vectors[cells] = vectors[rng.choice(first, cells.size)] \
            + rng.standard_normal((cells.size, DIM)).astype(np.float32) * 0.3 / np.sqrt(DIM)
    mv = MultiVector(_unit(vectors), mv.boxes)
    out = compressor("pool").compress(mv, regions=regions)
    assert int(out.weights().sum()) == mv.n
    paragraph_area = sum(len(paragraph_cells(p)) for p in range(len(PARAGRAPHS)))
    assert _paragraph_patches_kept_apart(out, regions) == paragraph_area
    # without the paragraphs (or with within_regions off) clusters do cross them
    for plain in (compressor("pool").compress(mv),
                  compressor("pool", within_regions=False).compress(mv, regions=regions)):
        assert _paragraph_patches_kept_apart(plain, regions) < paragraph_area / 2


def test_pool_keeps_one_vector_per_paragraph_up_to_twice_its_budget():
    rng = np.random.default_rng(5)
    # 30 two-cell paragraphs in one row each: the budget (60 / 3 = 20) is fewer than them
    boxes = cell_boxes()[: 2 * GRID].reshape(2, GRID, 4).transpose(1, 0, 2).reshape(-1, 4)[:60]
    regions = [Region((float(b[0]), float(b[1]), float(b[0]) + 1 / GRID, float(b[1]) + 2 / GRID),
                      f"p{i}") for i, b in enumerate(boxes[::2])]
    mv = MultiVector(_unit(rng.standard_normal((60, DIM))), boxes)
    out = compressor("pool", factor=3).compress(mv, regions=regions)
    assert out.n == 30 and (out.counts == 2).all()
    assert [region_of(b[None], regions)[0] for b in out.boxes] == list(range(30))
    # far more paragraphs than twice the budget: the budget doubles and no further
    out = compressor("pool", factor=6, min_keep=4).compress(mv, regions=regions)
    assert out.n == 2 * 10


def test_compress_all_passes_regions_only_to_a_compressor_that_uses_them():
    class Plain:  # a third-party compressor written against compress(mv)
        name = "plain"

        def compress(self, mv):
            return mv

    mv, regions = grid_page()
    assert compress_all("plain", Plain(), [mv], [regions])[0] is mv
    pooled = compress_all("pool", compressor("pool"), [mv], [regions])[0]
    expected = compressor("pool").compress(mv, regions=regions)
    np.testing.assert_array_equal(pooled.counts, expected.counts)


def test_cluster_labels_gives_the_asked_count_even_when_every_join_ties():
    points = np.eye(12, dtype=np.float32)  # every pair equally far apart
    for clusters in (1, 5, 11, 12, 20):
        labels = cluster_labels(points, clusters)
        assert np.unique(labels).size == min(clusters, 12)
        assert labels.min() == 0 and labels.max() == min(clusters, 12) - 1
    # two groups: the one join left at two clusters is the one across them
    groups = np.array([0] * 6 + [1] * 6)
    labels = cluster_labels(points, 2, groups=groups)
    assert (labels[:6] == labels[0]).all() and (labels[6:] == labels[6]).all()
    assert labels[0] != labels[6]
