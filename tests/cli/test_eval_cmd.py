"""``retriever eval`` end to end on three real pages, and its usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app, main
from retriever.regions import text_layer_regions

runner = CliRunner()


@pytest.fixture(scope="module")
def small_pdf(tmp_path_factory, real_pdf) -> Path:
    """Pages 4-6 of libtasn1.pdf as a PDF of its own (real prose, a real text layer)."""
    if not (shutil.which("pdfseparate") and shutil.which("pdfunite")):
        pytest.skip("poppler-utils not installed")
    out = tmp_path_factory.mktemp("eval-doc")
    subprocess.run(["pdfseparate", "-f", "4", "-l", "6", str(real_pdf), str(out / "p%d.pdf")],
                   check=True, capture_output=True)
    target = out / "tasn-4-6.pdf"
    subprocess.run(["pdfunite", *(str(out / f"p{n}.pdf") for n in (4, 5, 6)), str(target)],
                   check=True, capture_output=True)
    return target


@pytest.mark.slow
def test_eval_reports_ours_and_both_baselines_as_json(small_pdf, tmp_path):
    pytest.importorskip("bm25s")
    block = max(text_layer_regions(small_pdf, 2, 2)[2], key=lambda r: len(r.text))
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({
        "text": "which ASN.1 features does the library leave out?", "source": small_pdf.name,
        "page": 2, "bbox": list(block.bbox), "split": "test"}) + "\n")
    details, saved = tmp_path / "details.jsonl", tmp_path / "saved.jsonl"
    result = runner.invoke(app, ["eval", str(small_pdf), "--json", "--max-queries", "2",
                                 "-q", str(questions), "--details", str(details),
                                 "--save-queries", str(saved)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_key = {(r["system"], r["kind"]): r for r in rows}
    systems, kinds = ("ours", "bm25", "chunks"), ("phrase", "keywords", "question/test")
    assert set(by_key) == {(s, k) for s in systems for k in kinds}
    for row in rows:
        assert row["queries"] == (1 if row["kind"] == "question/test" else 2)
        for name in ("recall@1", "recall@5", "recall@10", "mrr"):
            assert 0.0 <= row[name] <= 1.0
        assert row["recall@1"] <= row["recall@5"] <= row["recall@10"]
    # exact phrases from a three-page document: BM25 cannot miss them
    assert by_key[("bm25", "phrase")]["recall@1"] == 1.0
    for system in ("ours", "chunks"):  # both return regions, so region metrics exist
        row = by_key[(system, "phrase")]
        assert row["grounded"] >= 1 and 0.0 <= row["iou"] <= 1.0 and row["area"] > 0
    assert by_key[("bm25", "phrase")]["iou"] is None
    assert "indexed 1 file(s), 3 page(s)" in result.stderr  # progress on stderr
    outcomes = [json.loads(line) for line in details.read_text().splitlines()]
    assert len(outcomes) == 3 * 5 and {o["system"] for o in outcomes} == set(systems)
    assert len(saved.read_text().splitlines()) == 5


def test_eval_usage_errors_exit_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.pdf"), "--no-generate",
                 "-q", str(tmp_path / "q.jsonl")]) == 2
    assert main(["eval", str(tmp_path), "-s", "max_regions"]) == 2
    assert main(["eval", str(tmp_path), "--systems", "ours,grep"]) == 2
    err = capsys.readouterr().err
    assert "bad -s" in err and "unknown systems" in err


@pytest.mark.slow
def test_eval_as_images_goes_through_ocr_and_keeps_the_truth(small_pdf, tmp_path):
    pytest.importorskip("bm25s")
    if not shutil.which("tesseract"):
        pytest.skip("tesseract not installed")
    one_page = tmp_path / "one.pdf"
    subprocess.run(["pdfseparate", "-f", "2", "-l", "2", str(small_pdf), str(one_page)],
                   check=True, capture_output=True)
    result = runner.invoke(app, ["eval", str(one_page), "--as-images", "--json", "--systems",
                                 "bm25", "--max-queries", "2", "--no-ocr"])
    assert result.exit_code == 1  # no text layer and no OCR: no page has any text to search
    result = runner.invoke(app, ["eval", str(one_page), "--as-images", "--json", "--systems",
                                 "bm25", "--max-queries", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["kind"] for r in rows} == {"phrase", "keywords"}
    # the phrase's truth (one.pdf, page 1) resolved to the rendered PNG, and OCR found it
    assert all(r["queries"] == 2 and r["recall@1"] == 1.0 for r in rows)
    assert "rendered 1 PDF page(s) as images" in result.stderr
