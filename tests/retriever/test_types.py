"""Core types validate what they hold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retriever.errors import RetrieverError
from retriever.types import Hit, MultiVector, Region, RegionHit


def test_multivector_validates_shapes_boxes_and_norms():
    good = MultiVector.normalized(np.random.default_rng(0).normal(size=(5, 8)),
                                  np.tile([0.1, 0.2, 0.3, 0.4], (5, 1)))
    assert (good.n, good.dim) == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(good.vectors, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(RetrieverError, match="2-D"):
        MultiVector(np.zeros(3), np.zeros((3, 4)))
    with pytest.raises(RetrieverError, match="boxes must be"):
        MultiVector(good.vectors, np.zeros((4, 4)))
    with pytest.raises(RetrieverError, match="normalized"):
        MultiVector(good.vectors, np.tile([0.5, 0.5, 0.2, 0.9], (5, 1)))  # x1 < x0
    with pytest.raises(RetrieverError, match="normalized"):
        MultiVector(good.vectors, np.tile([0.0, 0.0, 2.0, 1.0], (5, 1)))
    with pytest.raises(RetrieverError, match="L2"):
        MultiVector(good.vectors * 2, good.boxes)
    with pytest.raises(RetrieverError, match="NaN"):
        MultiVector(np.full((1, 8), np.nan), np.zeros((1, 4)))
    with pytest.raises(RetrieverError, match="zero vector"):
        MultiVector.normalized(np.zeros((1, 8)), np.zeros((1, 4)))
    empty = MultiVector.empty(8)
    assert (empty.n, empty.dim) == (0, 8)
    half = MultiVector(good.vectors.astype(np.float16), good.boxes)
    assert half.vectors.dtype == np.float16


def test_region_roundtrip_and_lines():
    line = Region((0.1, 0.1, 0.5, 0.15), "hello world", "line", "text_layer")
    para = Region((0.1, 0.1, 0.5, 0.3), "hello world", "paragraph", "text_layer", None, (line,))
    again = Region.from_dict(json.loads(json.dumps(para.to_dict())))
    assert again == para
    assert para.lines == (line,)
    lonely = Region((0, 0, 1, 1), "no lines")
    assert lonely.lines == (lonely,)
    with pytest.raises(RetrieverError):
        Region((0.5, 0.1, 0.4, 0.2), "inverted")


def test_hit_json_schema():
    hit = Hit(rank=1, score=0.87654321, doc_id="abc", source="/tmp/x.pdf", page=2,
              page_width=1240, page_height=1754,
              regions=[RegionHit((0.1, 0.2, 0.3, 0.4), "text", 0.5)])
    data = hit.to_dict()
    assert set(data) == {"rank", "score", "doc_id", "source", "page", "page_width",
                         "page_height", "regions"}
    assert data["regions"] == [{"bbox": [0.1, 0.2, 0.3, 0.4], "text": "text", "score": 0.5}]
    json.dumps(data)
