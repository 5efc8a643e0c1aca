"""Undoing resize and centre crop: exact boxes for known page sizes."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from repo_paths import REPO
from retriever.errors import RetrieverError
from retriever.geometry import (
    WHOLE,
    center_crop_content_box,
    center_crop_window,
    clip_to_page,
    grid_boxes,
    input_window,
    patch_area_box,
    patch_grid_boxes,
    resize_content_box,
    shortest_edge_size,
)


def test_grid_boxes_row_major_over_the_whole_page():
    boxes = grid_boxes(2, 4)
    expected = [
        [0.0, 0.0, 0.25, 0.5], [0.25, 0.0, 0.5, 0.5], [0.5, 0.0, 0.75, 0.5], [0.75, 0.0, 1.0, 0.5],
        [0.0, 0.5, 0.25, 1.0], [0.25, 0.5, 0.5, 1.0], [0.5, 0.5, 0.75, 1.0], [0.75, 0.5, 1.0, 1.0],
    ]
    np.testing.assert_array_equal(boxes, np.asarray(expected))


def test_grid_boxes_within_a_content_box():
    boxes = grid_boxes(2, 2, (0.25, 0.0, 0.75, 1.0))
    expected = [[0.25, 0.0, 0.5, 0.5], [0.5, 0.0, 0.75, 0.5],
                [0.25, 0.5, 0.5, 1.0], [0.5, 0.5, 0.75, 1.0]]
    np.testing.assert_array_equal(boxes, np.asarray(expected))


def test_grid_boxes_tile_the_content_box_without_gaps():
    boxes = grid_boxes(7, 5, (0.1, 0.2, 0.9, 0.7))
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
    assert area == pytest.approx(0.8 * 0.5, abs=1e-12)
    grid = boxes.reshape(7, 5, 4)
    np.testing.assert_allclose(grid[:, 1:, 0], grid[:, :-1, 2], atol=1e-15)  # no gaps in x
    np.testing.assert_allclose(grid[1:, :, 1], grid[:-1, :, 3], atol=1e-15)  # nor in y


def test_shortest_edge_size_truncates_the_long_side_like_transformers():
    assert shortest_edge_size(200, 100, 224) == (448, 224)
    assert shortest_edge_size(100, 300, 224) == (224, 672)
    assert shortest_edge_size(333, 500, 224) == (224, int(224 * 500 / 333))  # 336, not 336.3
    assert shortest_edge_size(224, 224, 224) == (224, 224)


def test_center_crop_of_a_landscape_page_keeps_the_middle_half():
    # 200x100 -> 448x224, crop 224x224 at left (448 - 224) // 2 = 112
    assert center_crop_content_box(200, 100, 224, 224, 224) == (0.25, 0.0, 0.75, 1.0)


def test_center_crop_of_a_portrait_page_keeps_the_middle_third():
    # 100x300 -> 224x672, crop 224x224 at top (672 - 224) // 2 = 224
    assert center_crop_content_box(100, 300, 224, 224, 224) == (0.0, 1 / 3, 1.0, 2 / 3)


def test_center_crop_with_an_odd_margin_floors_the_offset():
    # 101x100 -> 226x224 (int(224 * 1.01) = 226), crop 224 wide starts at 1
    box = center_crop_content_box(101, 100, 224, 224, 224)
    assert box == (1 / 226, 0.0, 225 / 226, 1.0)
    # 103x100 -> 230x224 (int(230.72)); floor((230 - 224) / 2) = 3; round() also gives 3
    assert center_crop_content_box(103, 100, 224, 224, 224) == (3 / 230, 0.0, 227 / 230, 1.0)
    # margin 5: floor 2; margin 7: floor 3 (transformers), torchvision's round(3.5) = 4
    assert center_crop_window(229, 224, None, 224, 224, "floor")[0] == 2 / 229
    assert center_crop_window(231, 224, None, 224, 224, "floor")[0] == 3 / 231
    assert center_crop_window(231, 224, None, 224, 224, "round")[0] == 4 / 231


def test_a_crop_larger_than_the_page_pads_and_the_window_reaches_past_it():
    # no resize, 100x50 page, 100x100 crop: 25 pixels of padding above and below
    window = center_crop_window(100, 50, None, 100, 100)
    assert window == (0.0, -0.5, 1.0, 1.5)
    assert center_crop_content_box(100, 50, None, 100, 100) == WHOLE
    boxes, keep = clip_to_page(grid_boxes(4, 1, window))
    # rows: [-0.5, 0], [0, 0.5], [0.5, 1], [1, 1.5]: the first and last are all padding
    assert keep.tolist() == [False, True, True, False]
    np.testing.assert_array_equal(boxes[keep], [[0.0, 0.0, 1.0, 0.5], [0.0, 0.5, 1.0, 1.0]])


def test_plain_resize_shows_the_whole_page():
    assert resize_content_box() == WHOLE


def test_patch_area_drops_the_pixels_the_patch_convolution_ignores():
    covered, rows, cols = patch_area_box((0.25, 0.0, 0.75, 1.0), 30, 20, 8)
    assert (rows, cols) == (3, 2)
    assert covered == (0.25, 0.0, 0.25 + 0.5 * 16 / 20, 24 / 30)
    full, rows, cols = patch_area_box(WHOLE, 224, 224, 16)
    assert (full, rows, cols) == (WHOLE, 14, 14)
    with pytest.raises(RetrieverError):
        patch_area_box(WHOLE, 4, 224, 16)


def test_input_window_for_each_kind_of_preprocessing():
    # CLIP: short side to 224, centre crop 224
    assert input_window(200, 100, shortest_edge=224, crop=(224, 224)) == (0.25, 0.0, 0.75, 1.0)
    # SigLIP: squash to a square, no crop
    assert input_window(200, 100, size=(224, 224)) == WHOLE
    # squash to 100x100 then crop the middle 50x100 (height x width)
    assert input_window(300, 40, size=(100, 100), crop=(50, 100)) == (0.0, 0.25, 1.0, 0.75)
    # a crop without a resize
    assert input_window(100, 40, crop=(40, 50)) == (0.25, 0.0, 0.75, 1.0)
    with pytest.raises(RetrieverError):
        input_window(10, 10, shortest_edge=5, size=(5, 5))


def test_patch_grid_boxes_drop_cells_that_saw_only_padding():
    boxes, keep = patch_grid_boxes(input_window(100, 50, crop=(100, 100)), 100, 100, 25)
    assert keep.reshape(4, 4).all(axis=1).tolist() == [False, True, True, False]
    np.testing.assert_array_equal(boxes[keep][:4], grid_boxes(2, 4)[:4])
    boxes, keep = patch_grid_boxes((0.25, 0.0, 0.75, 1.0), 32, 32, 8)
    assert keep.all()
    np.testing.assert_array_equal(boxes, grid_boxes(4, 4, (0.25, 0.0, 0.75, 1.0)))


def test_shifted_token_centres_still_tile_the_window():
    # stride 16, 3 tokens centred on input pixels 0, 16, 32 of a 48 px input
    boxes, keep = patch_grid_boxes(WHOLE, 48, 48, 16, shift=-7.5)
    assert keep.all()
    edges = np.array([0.0, 8.5, 24.5, 48.0]) / 48
    grid = boxes.reshape(3, 3, 4)
    np.testing.assert_allclose(grid[0, :, 0], edges[:-1])
    np.testing.assert_allclose(grid[0, :, 2], edges[1:])
    np.testing.assert_allclose(grid[:, 0, 1], edges[:-1])
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
    assert area == pytest.approx(1.0)


def test_bad_sizes_raise():
    with pytest.raises(RetrieverError):
        grid_boxes(0, 3)
    with pytest.raises(RetrieverError):
        center_crop_content_box(0, 100, 224, 224, 224)


def test_geometry_does_not_import_torch():
    import subprocess

    code = "import retriever.geometry, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == "False"
