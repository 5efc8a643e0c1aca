"""Regions stored flat (``RegionColumns``) and read lazily (``LazyRegions``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retriever.errors import RetrieverError
from retriever.regions import regions_from_words
from retriever.regions.columns import LazyRegions, RegionColumns, regions_json, regions_object
from retriever.types import Region


def _page() -> list[Region]:
    words = [((0.1 + 0.1 * i, 0.1, 0.19 + 0.1 * i, 0.12), w, 0.9 - 0.01 * i, 1, 0, 0)
             for i, w in enumerate("the first line".split())]
    words += [((0.1, 0.13, 0.3, 0.15), "second", None, 1, 0, 1)]
    words += [((0.1, 0.5, 0.3, 0.52), "Straße", 0.5, 2, 0, 0)]  # not ASCII
    regions = regions_from_words(words, source="ocr")
    # a paragraph whose text is not the join of its lines, and one without children
    odd = Region((0.5, 0.6, 0.9, 0.7), "heading", source="text_layer",
                 children=(Region((0.5, 0.6, 0.9, 0.65), "head", level="line",
                                  source="text_layer"),))
    bare = Region((1 / 3, 0.8, 2 / 3, 0.9), "no lines", source="text_layer")
    return [*regions, odd, bare]


def test_round_trip_is_exact_in_both_stored_forms():
    regions = _page()
    for stored in (regions_json(regions), json.dumps(regions_object(regions)),
                   regions_object(regions), json.dumps([r.to_dict() for r in regions]),
                   [r.to_dict() for r in regions]):
        back = RegionColumns.from_stored(stored).to_regions()
        assert back == regions  # boxes bit for bit (1/3 too), texts, confidences, levels
    assert RegionColumns.from_stored("").to_regions() == []
    assert RegionColumns.from_regions([]).to_regions() == []


def test_derived_texts_are_stored_once():
    stored = regions_object(_page())
    texts = stored["texts"]
    assert texts[0] is None  # "the first line second" = its lines joined
    assert "heading" in texts and "head" in texts  # not derivable: both kept
    assert texts.count("the") == 1


def test_units_per_level_and_texts():
    cols = RegionColumns.from_regions(_page())
    assert [cols.text(i) for i in cols.top_level()] == [
        "the first line second", "Straße", "heading", "no lines"]
    lines = cols.units("line")
    assert [cols.text(i) for i in lines] == ["the first line", "second", "Straße", "head",
                                             "no lines"]  # a bare paragraph stands as a line
    assert [cols.level_name(i) for i in cols.units("word")][-2:] == ["line", "paragraph"]
    assert cols.child_counts()[cols.top_level()].tolist() == [2, 1, 1, 0]


@pytest.mark.parametrize("damage", [
    lambda d: d.update(v=3),
    lambda d: d.update(levels=d["levels"][:-1]),
    lambda d: d.update(levels="x" * len(d["levels"])),
    lambda d: d.update(parents=[5] * len(d["parents"])),
    lambda d: d.update(boxes="not base64!"),
    lambda d: d.pop("texts"),
])
def test_damaged_stored_regions_are_clear_errors(damage):
    stored = regions_object(_page())
    damage(stored)
    with pytest.raises(RetrieverError):
        RegionColumns.from_stored(stored)


def test_lazy_regions_parse_on_first_access():
    regions = _page()
    lazy = LazyRegions(regions_json(regions))
    assert not lazy.parsed and len(lazy) == 4 and not lazy.parsed  # counted from columns
    assert lazy.columns.boxes.shape == (len(lazy.columns), 4) and not lazy.parsed
    assert lazy[0] == regions[0] and lazy.parsed
    assert list(lazy) == regions and lazy == regions and regions == lazy
    assert lazy[1:3] == regions[1:3]
    assert LazyRegions(regions_json(regions)) == LazyRegions.of(regions)
    assert lazy != regions[:2] and lazy != "text"
    assert "4 regions" in repr(lazy)
    with pytest.raises(TypeError):
        hash(lazy)
    # a stored v2 string passes through untouched when written again
    text = regions_json(regions)
    assert LazyRegions(text).to_json() is text
    old = json.dumps([r.to_dict() for r in regions])
    assert json.loads(LazyRegions(old).to_json())["v"] == 2  # old form upgrades on write
    assert np.array_equal(LazyRegions.of(regions).columns.boxes,
                          RegionColumns.from_stored(text).boxes)
