"""``--indexer-option`` / ``-O`` on index and search, and ``search --rerank`` on FAISS:
real poppler, MiniLM and faiss on two sample PDFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from repo_paths import SAMPLES

pytest.importorskip("faiss")

FILES = ("invoice.pdf", "slide.pdf")
QUERY = next(q for q in json.loads((SAMPLES / "queries.json").read_text())
             if q["source"] in FILES)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("faiss-options-home")
    code = main(["index", *(str(SAMPLES / f) for f in FILES), "--indexer", "faiss", "-c", "q",
                 "--quantization", "binary", "-O", "dtype=float32", "--indexer-option",
                 "index_type=flat", "--data-dir", str(home), "--json"])
    assert code == 0
    return home


def _search(home: Path, *extra: str) -> list[str]:
    return ["search", QUERY["query"], "-c", "q", "--data-dir", str(home), "-k", "1", "--json",
            *extra]


def test_build_options_are_stored_in_the_manifest(home, capsys):
    capsys.readouterr()
    manifest = json.loads((home / "collections" / "q" / "faiss" / "manifest.json").read_text())
    assert manifest["indexer_options"] == {"dtype": "float32", "index_type": "flat"}
    assert main(["collections", "info", "q", "--data-dir", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexer_options"] == manifest["indexer_options"]


@pytest.mark.parametrize("extra", [(), ("--rerank", "1"), ("--rerank", "50"),
                                   ("-O", "rerank=2"), ("--indexer-option", "threads=1"),
                                   ("-O", "device=cpu")])
def test_search_options_on_a_faiss_collection(home, capsys, extra):
    capsys.readouterr()
    code = main(_search(home, *extra))
    out = capsys.readouterr()
    assert code == 0, out.err
    top = json.loads(out.out.splitlines()[0])
    assert (Path(top["source"]).name, top["page"]) == (QUERY["source"], QUERY["page"])


@pytest.mark.parametrize("extra, message", [
    (("-O", "index_type=hnsw"), "option index_type cannot change per search"),
    (("-O", "nprobe=lots"), "nprobe='lots' is invalid"),
    (("-O", "bogus=1"), "indexer 'faiss' has no option bogus"),
    (("-O", "nokey"), "bad --indexer-option 'nokey'"),
    (("-O", "device=gpu7"), "unknown device 'gpu7'"),
    (("-O", "device=cuda:3"), "device 'cuda:3' is not available"),  # none here, or too few
])
def test_bad_search_options_are_usage_errors(home, capsys, extra, message):
    capsys.readouterr()
    assert main(_search(home, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_index_options_are_usage_errors(home, tmp_path, capsys):
    doc = str(SAMPLES / FILES[0])
    assert main(["index", doc, "--indexer", "faiss", "-c", "new", "-O", "index_type=lsh",
                 "--data-dir", str(tmp_path)]) == 2
    assert "index_type='lsh' is invalid" in capsys.readouterr().err
    assert main(["index", doc, "-c", "q", "-O", "index_type=hnsw", "--data-dir",
                 str(home)]) == 2
    assert "built with indexer option index_type='flat'" in capsys.readouterr().err


def test_rerank_on_a_faiss_collection_indexed_without_options(tmp_path, capsys):
    """``search --rerank`` once failed on every FAISS collection ("does not take rerank")."""
    assert main(["index", str(SAMPLES / FILES[0]), "--indexer", "faiss", "--data-dir",
                 str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    code = main(["search", "bank transfer", "--data-dir", str(tmp_path), "--rerank", "3",
                 "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert Path(json.loads(out.out.splitlines()[0])["source"]).name == FILES[0]
