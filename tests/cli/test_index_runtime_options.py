"""``retriever index --device/--dtype/--batch-size`` reach the encoder, and only when given."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app, main
from repo_paths import SAMPLES
from retriever import Retriever

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("open_clip")
from tiny_vit import build_tiny_clip  # noqa: E402

runner = CliRunner()


def test_help_lists_the_runtime_options():
    result = runner.invoke(app, ["index", "--help"])
    assert result.exit_code == 0
    for flag in ("--device", "--dtype", "--batch-size"):
        assert flag in result.output


def test_runtime_options_reach_the_encoder_but_not_the_manifest(tmp_path, capsys):
    model = build_tiny_clip(tmp_path / "clip")
    home = tmp_path / "home"
    args = ["index", str(SAMPLES / "scanned-letter.png"), "--data-dir", str(home), "--no-ocr",
            "--encoder", "clip/vit-b-16", "-o", f"model={model}", "-o", "patches=true",
            "--device", "cpu", "--dtype", "float32", "--batch-size", "3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == []
    with Retriever("default", data_dir=home, encoder_options={"batch_size": 5}) as r:
        stored = r.info()["encoder"]["options"]
        assert stored == {"model": str(model), "patches": True}  # no device, dtype, batch
        assert r.encoder.engine.batch_size == 5  # given now: added to the stored options
        assert str(r.encoder.engine.device) == "cpu"
    code = main(["index", str(SAMPLES / "scanned-letter.png"), "--data-dir", str(home),
                 "--no-ocr", "--force", "--dtype", "int3"])
    assert code == 2 and "unknown dtype" in capsys.readouterr().err


def _tiff(path, pages):
    from PIL import Image

    frames = [Image.new("RGB", (200, 260), (255, 255 - 20 * i, 255)) for i in range(pages)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


def test_batch_size_is_the_batch_the_model_sees_during_index(tmp_path, monkeypatch):
    """--batch-size above 8 used to be capped by the pipeline's fixed page batch."""
    from retriever.engine import EncodingEngine

    seen: list[int] = []
    real_run = EncodingEngine.run

    def recording_run(self, items, *args, **kwargs):
        if items and hasattr(items[0], "page_number"):  # pages, not query texts
            seen.append(len(items))
        return real_run(self, items, *args, **kwargs)

    monkeypatch.setattr(EncodingEngine, "run", recording_run)
    model = build_tiny_clip(tmp_path / "clip")
    doc = _tiff(tmp_path / "twelve.tiff", 12)
    home = tmp_path / "home"
    base = ["index", str(doc), "--data-dir", str(home), "--no-ocr", "--encoder",
            "clip/vit-b-16", "-o", f"model={model}", "--device", "cpu"]
    assert main([*base, "--batch-size", "12"]) == 0
    assert seen == [12]  # one call with every page, not 8 + 4
    seen.clear()
    assert main([*base, "--force"]) == 0
    assert seen == [8, 4]  # the CPU default


def test_page_batch_default_grows_on_a_gpu():
    from retriever.engine import EncodingEngine

    engine = EncodingEngine(device="cpu")
    assert engine.batch_for(8) == 8
    engine.device = type(engine.device)("cuda")  # only the planning is under test
    assert engine.batch_for(8) == 32
    assert EncodingEngine(device="cpu", batch_size=20).batch_for(8) == 20
