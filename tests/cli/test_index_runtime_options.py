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
