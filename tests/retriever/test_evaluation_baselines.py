"""The baselines (BM25 over pages, max-over-chunks embeddings) and the chunker."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.evaluation.baselines import BM25Pages, ChunkEmbeddings
from retriever.evaluation.catalog import IndexedPage, PageCatalog
from retriever.evaluation.pagetext import PageText, chunk_words, page_text
from retriever.evaluation.queries import Query
from retriever.regions import text_layer_regions
from retriever.types import MultiVector, Region


def _page(key: str, text: str) -> PageText:
    words = tuple((w, (0.1, 0.1 + 0.003 * i, 0.2, 0.102 + 0.003 * i))
                  for i, w in enumerate(text.split()))
    return PageText(key, text, words)


def test_bm25_ranks_the_page_holding_an_exact_phrase_first(real_pdf):
    pytest.importorskip("bm25s")
    layer = text_layer_regions(real_pdf, 1, 10)
    pages = [page_text(f"doc:{n}", regions) for n, regions in sorted(layer.items())]
    bm25 = BM25Pages(pages)
    # a run of words from the middle of a long paragraph of page 5
    paragraph = max(layer[5], key=lambda r: len(r.text))
    words = paragraph.text.split()
    phrase = " ".join(words[len(words) // 2: len(words) // 2 + 8])
    ranked = bm25.rank([phrase, "the of and"], k=3)
    assert ranked[0][0].key == "doc:5"
    assert ranked[1] == []  # only stopwords: no evidence, no results


def test_bm25_returns_no_page_that_shares_no_term():
    pytest.importorskip("bm25s")
    bm25 = BM25Pages([_page("a:1", "lions roam the savanna"), _page("a:2", "penguins swim")])
    ranked = bm25.rank(["penguins", "glaciers"], k=5)
    assert [p.key for p in ranked[0]] == ["a:2"]
    assert ranked[1] == []


def test_chunker_respects_size_and_overlap():
    text = " ".join(f"word{i:03d}" for i in range(200))  # 8-char words
    chunks = chunk_words(_page("d:1", text), size=100, overlap=20)
    assert all(len(c.text) <= 100 for c in chunks)
    for before, after in zip(chunks, chunks[1:]):
        shared = set(before.text.split()) & set(after.text.split())
        assert 1 <= len(shared) <= 2  # 20 characters hold two 8-char words and a space
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(text.split())
    first = chunks[0]
    assert first.bbox[0] == pytest.approx(0.1) and first.bbox[1] == pytest.approx(0.1)
    assert chunk_words(_page("d:2", ""), 100, 20) == []
    with pytest.raises(ValueError):
        chunk_words(_page("d:3", text), size=10, overlap=10)


def test_page_text_uses_word_boxes_and_reading_order():
    word = lambda t, x: Region((x, 0.1, x + 0.1, 0.2), t, level="word")  # noqa: E731
    line = Region((0.1, 0.1, 0.4, 0.2), "alpha beta", level="line",
                  children=(word("alpha", 0.1), word("beta", 0.25)))
    para = Region((0.1, 0.1, 0.4, 0.2), "alpha beta", children=(line,))
    bare = Region((0.1, 0.5, 0.4, 0.6), "gamma delta")  # no children: the box is its own
    page = page_text("d:1", [para, bare])
    assert page.text == "alpha beta\ngamma delta"
    assert [w for w, _ in page.words] == ["alpha", "beta", "gamma", "delta"]
    assert page.words[1][1] == (0.25, 0.1, 0.35, 0.2) and page.words[2][1] == bare.bbox


class _BagOfWords:
    """A stand-in sentence encoder: hashed bag of words, one vector per text."""

    dim = 64

    def encode_queries(self, texts):
        out = []
        for text in texts:
            v = np.zeros(self.dim, np.float32)
            for token in text.lower().split():
                v[sum(map(ord, token)) % self.dim] += 1.0
            v = v if v.any() else np.ones(self.dim, np.float32)
            out.append(MultiVector.normalized(v[None, :], np.asarray([[0, 0, 1, 1]], np.float32)))
        return out


def test_chunk_embeddings_score_a_page_by_its_best_chunk_and_return_its_box():
    filler = " ".join(["filler"] * 120)
    pages = [_page("a:1", f"{filler} volcanic eruption lava {filler}"), _page("a:2", filler)]
    system = ChunkEmbeddings(pages, _BagOfWords(), size=100, overlap=10)
    assert system.n_chunks > 4
    ranked = system.rank(["lava eruption volcanic"], k=2)[0]
    assert ranked[0].key == "a:1" and ranked[0].score > ranked[1].score
    (box,) = ranked[0].regions
    assert box[1] > 0.3  # the chunk in the middle of the page, not the first one


def test_catalog_matches_by_path_then_by_file_name(tmp_path):
    pages = [IndexedPage("d1:1", "/x/a.pdf", 1, "/x/a.pdf", 1),
             IndexedPage("d2:1", "/t/p7.png", 1, "/x/b.pdf", 7),
             IndexedPage("d3:1", "/y/c.pdf", 1, "/y/c.pdf", 1),
             IndexedPage("d4:1", "/z/c.pdf", 1, "/z/c.pdf", 1)]
    catalog = PageCatalog(pages)
    q = lambda source, page: Query(text="t", source=source, page=page)  # noqa: E731
    assert catalog.truth_key(q("/x/a.pdf", 1)) == ("d1:1", "")
    assert catalog.truth_key(q("a.pdf", 1)) == ("d1:1", "")
    assert catalog.truth_key(q("b.pdf", 7)) == ("d2:1", "")  # a page rendered as an image
    assert catalog.truth_key(q("/y/c.pdf", 1)) == ("d3:1", "")
    assert catalog.truth_key(q("c.pdf", 1))[0] is None  # two indexed files share the name
    assert catalog.truth_key(q("a.pdf", 2)) == (None, "page not indexed")
    assert catalog.truth_key(q("nope.pdf", 1)) == (None, "file not indexed")
