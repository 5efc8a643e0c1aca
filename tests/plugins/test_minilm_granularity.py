"""text/minilm granularity: what one vector embeds, and the box it keeps (union of lines)."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.text.units import page_units, union_box, window_units
from retriever.errors import UsageError
from retriever.manifest import EncoderIdentity
from retriever.plugin_host import get_registry
from retriever.types import Page, Region


def _paragraph(lines: list[str], top: float, left: float = 0.1) -> Region:
    # lines of unequal width, so a union box differs from any one line's box
    children = tuple(
        Region((left, top + 0.03 * i, left + 0.5 + 0.05 * (i % 3), top + 0.03 * (i + 1)),
               text, "line", "text_layer") for i, text in enumerate(lines))
    return Region((left, top, left + 0.6, top + 0.03 * len(lines)), " ".join(lines),
                  "paragraph", "text_layer", None, children)


def _words(texts):  # a token counter without a model: one token per word
    return [len(t.split()) for t in texts]


REGIONS = [
    _paragraph([f"alpha {i} " + "word " * 5 for i in range(7)], 0.05),  # 7 lines x 7 words
    _paragraph(["A short heading"], 0.40),
    _paragraph(["one two three", "four five six seven"], 0.50),
]


def _lines_of(unit_text: str) -> list[Region]:
    """The lines (in order) whose joined text is the unit's text."""
    for para in REGIONS:
        lines = list(para.lines)
        for a in range(len(lines)):
            for b in range(a + 1, len(lines) + 1):
                if " ".join(ln.text.strip() for ln in lines[a:b]) == unit_text:
                    return lines[a:b]
    raise AssertionError(f"{unit_text!r} is not a run of lines of one paragraph")


@pytest.mark.parametrize("granularity", ["paragraphs", "windows", "mixed"])
def test_every_unit_is_a_run_of_lines_boxed_by_their_union(granularity):
    units = page_units(REGIONS, granularity, window=16, overlap=8, count_tokens=_words)
    assert units
    for unit in units:
        if granularity == "mixed" and unit.box in {ln.bbox for p in REGIONS for ln in p.lines}:
            continue  # a line vector (with context): boxed by its own line
        assert unit.box == union_box(_lines_of(unit.text))


def test_lines_keep_the_line_box_and_embed_their_neighbours():
    units = page_units(REGIONS, "lines", context=1)
    lines = [ln for p in REGIONS for ln in p.lines]
    assert [u.box for u in units] == [ln.bbox for ln in lines]
    assert units[1].text == " ".join(ln.text.strip() for ln in REGIONS[0].lines[:3])
    assert units[7].text == "A short heading"  # context never crosses a paragraph


def test_paragraphs_are_whole():
    units = page_units(REGIONS, "paragraphs")
    assert [u.box for u in units] == [union_box(p.lines) for p in REGIONS]
    assert units[2].text == "one two three four five six seven"


def test_windows_respect_the_budget_overlap_and_cover_every_line():
    units = window_units(REGIONS[:1], _words, window=16, overlap=8)
    runs = [_lines_of(u.text) for u in units]
    assert all(sum(_words([ln.text for ln in run])) <= 16 for run in runs)
    for before, after in zip(runs, runs[1:]):
        shared = [ln for ln in after if ln in before]
        assert after[0] != before[0]  # progress
        assert sum(_words([ln.text for ln in shared])) <= 8
    assert {ln for run in runs for ln in run} == set(REGIONS[0].lines)
    # a paragraph that fits is one window, the same as its paragraph
    assert window_units(REGIONS[2:], _words, window=16, overlap=8)[0].box == \
        union_box(REGIONS[2].lines)
    # a line longer than the window stands alone (the model truncates it)
    long = window_units([_paragraph(["w " * 40, "end"], 0.1)], _words, window=16, overlap=4)
    assert [u.text for u in long] == ["w " * 39 + "w", "end"]


def test_windows_over_the_page_cross_paragraphs_in_reading_order():
    units = window_units(REGIONS, _words, window=20, overlap=0, span="page")
    joined = " ".join(u.text for u in units)
    assert joined == " ".join(ln.text.strip() for p in REGIONS for ln in p.lines)
    heading = next(u for u in units if "A short heading" in u.text)
    assert heading.text != "A short heading"  # it shares a window with its neighbours


def test_mixed_is_lines_and_windows_without_duplicates():
    lines = page_units(REGIONS, "lines")
    windows = page_units(REGIONS, "windows", window=16, overlap=8, count_tokens=_words)
    mixed = page_units(REGIONS, "mixed", window=16, overlap=8, count_tokens=_words)
    assert mixed[:len(lines)] == lines
    assert set(mixed) == set(lines) | set(windows)
    assert len(mixed) == len(set(mixed))  # the heading's line and window are one vector


def test_empty_lines_and_pages():
    assert page_units([], "windows", count_tokens=_words) == []
    blank = [_paragraph(["  ", ""], 0.1)]
    for granularity in ("lines", "paragraphs", "windows", "mixed"):
        assert page_units(blank, granularity, count_tokens=_words) == []


# -- the encoder: options, identity, real vectors ------------------------------------------

def test_options_are_declared_typed_and_checked():
    spec = get_registry().get("encoder", "text/minilm")
    assert spec.parse_options({"granularity": "Windows", "window": "64", "overlap": "16"}) == \
        {"granularity": "windows", "window": 64, "overlap": 16}
    with pytest.raises(UsageError, match="granularity"):
        spec.parse_options({"granularity": "sentences"})
    with pytest.raises(UsageError, match="query_backend"):
        spec.parse_options({"query_backend": "tensorrt"})


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from plugins.text.minilm import MiniLMLineEncoder  # noqa: E402


def test_bad_window_sizes_are_usage_errors():
    with pytest.raises(UsageError, match="overlap must be smaller"):
        MiniLMLineEncoder(granularity="windows", window=32, overlap=32)
    with pytest.raises(UsageError, match="max_length"):
        MiniLMLineEncoder(granularity="windows", window=200)


def test_identity_records_what_shapes_the_vectors():
    lines = MiniLMLineEncoder().identity
    fingerprint = lines.revision.partition("+")[0]
    # collections made before granularity existed: lines, +ctx1, no options recorded
    old = EncoderIdentity(name="text/minilm", model_id=lines.model_id,
                          revision=f"{fingerprint}+ctx1", dim=384, kind="multi", options={})
    assert lines.same_vectors_as(old) and lines.options == {}
    para = MiniLMLineEncoder(granularity="paragraphs").identity
    assert para.revision == f"{fingerprint}+para"
    assert para.options == {"granularity": "paragraphs"}
    windows = MiniLMLineEncoder(granularity="windows", window=64, overlap=16).identity
    assert windows.options == {"granularity": "windows", "window": 64, "overlap": 16,
                               "span": "paragraph"}
    mixed = MiniLMLineEncoder(granularity="mixed").identity
    assert mixed.revision.endswith("+ctx1+win96o32")
    identities = [lines, para, windows, mixed]
    assert all(not a.same_vectors_as(b) for i, a in enumerate(identities)
               for b in identities[i + 1:])
    # options recorded in a manifest rebuild the same encoder
    again = get_registry().create("encoder", "text/minilm", **windows.options).identity
    assert again.same_vectors_as(windows)


def _page(regions) -> Page:
    return Page(doc_id="d", source="s.pdf", page_number=1, width=100, height=100,
                regions=list(regions))


@pytest.mark.parametrize("granularity", ["lines", "paragraphs", "windows", "mixed"])
def test_encoded_boxes_are_the_units_boxes_and_deterministic(granularity):
    encoder = MiniLMLineEncoder(granularity=granularity, window=24, overlap=8, batch_size=3)
    page = _page(REGIONS)
    (mv,) = encoder.encode_pages([page])
    model = encoder._torch_model()
    units = page_units(page.regions, granularity, window=24, overlap=8,
                       count_tokens=model.count_tokens)
    np.testing.assert_array_equal(mv.boxes, np.asarray([u.box for u in units], np.float32))
    np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, rtol=1e-5)
    (again,) = encoder.encode_pages([page])
    np.testing.assert_array_equal(mv.vectors, again.vectors)
    encoder.batch_size = 64  # one batch instead of several: the same vectors
    (alone,) = encoder.encode_pages([page])
    np.testing.assert_allclose(mv.vectors, alone.vectors, atol=1e-5)


def test_collections_made_before_granularity_reopen_as_lines(tmp_path, samples_dir):
    """Their manifests record no granularity and revision ``+ctx1``: whatever the default
    for new collections, they reopen with the lines they were built with."""
    from retriever import Retriever

    invoice = samples_dir / "invoice.pdf"
    with Retriever("old", data_dir=tmp_path, ocr=None,
                   encoder_options={"granularity": "lines", "context": 1}) as r:
        r.index([invoice])
        stored = r.indexer.manifest.encoder
    assert stored.options == {} and stored.revision.endswith("+ctx1")  # as before
    with Retriever("old", data_dir=tmp_path, ocr=None) as r:
        assert (r.encoder.granularity, r.encoder.context) == ("lines", 1)
        assert r.search("when is the invoice due?", k=1)[0].source == str(invoice)
        r.index([invoice], force=True)  # new pages of the old collection: lines still
    spec = get_registry().get("encoder", "text/minilm")
    with Retriever("new", data_dir=tmp_path, ocr=None) as r:
        r.index([invoice])
        made = r.indexer.manifest.encoder
    # a new collection records what differs from the legacy values, so it reopens as made
    again = get_registry().create("encoder", "text/minilm",
                                  **spec.reopen_options(made.options)).identity
    assert again.same_vectors_as(made)
