"""Encoder options typed by their declarations, end to end through ``cli.main.main``.

``-o trust_remote_code=false`` once turned remote code ON (the string "false" reached
``bool()``), and an unknown option on an encoder whose factory takes ``**options`` ended
in a TypeError traceback.
"""

from __future__ import annotations

import json

import pytest

from cli.main import main
from repo_paths import SAMPLES

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", minversion="5")
from plugins.colpali.synthetic import save_synthetic  # noqa: E402

IMAGE = SAMPLES / "scanned-letter.png"


@pytest.fixture(scope="module")
def colpali_dir(tmp_path_factory):
    return save_synthetic("colpali-tiny", tmp_path_factory.mktemp("colpali-tiny"))


@pytest.fixture
def told(monkeypatch):
    """What ``trust_remote_code`` every ``AutoConfig.from_pretrained`` call was given."""
    seen: list[object] = []
    original = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    return seen


def _index(home, *args: str) -> list[str]:
    return ["index", str(IMAGE), "--data-dir", str(home), "--no-ocr", "--json", *args]


@pytest.mark.parametrize("word, expected", [("false", False), ("FALSE", False), ("0", False),
                                            ("off", False), ("true", True), ("yes", True)])
def test_trust_remote_code_is_the_bool_written(tmp_path, colpali_dir, told, capsys, word,
                                               expected):
    code = main(_index(tmp_path, "-e", "colpali/v1.3", "-o", f"model={colpali_dir}",
                       "-o", f"trust_remote_code={word}"))
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["failed"] == []
    assert told and all(value is expected for value in told)


def test_trust_remote_code_maybe_is_a_usage_error(tmp_path, colpali_dir, told, capsys):
    code = main(_index(tmp_path, "-e", "colpali/v1.3", "-o", f"model={colpali_dir}",
                       "-o", "trust_remote_code=maybe"))
    err = capsys.readouterr().err
    assert code == 2
    assert "colpali/v1.3" in err and "trust_remote_code='maybe'" in err
    assert "true or false" in err and "Traceback" not in err
    assert told == []  # refused before anything was loaded


@pytest.mark.parametrize("encoder", ["colpali/v1.3", "colqwen2/v1.0", "clip/vit-b-16",
                                     "siglip/base-patch16-224", "vitamin/s", "text/minilm"])
def test_an_unknown_option_is_a_usage_error_for_every_encoder(tmp_path, capsys, encoder):
    code = main(_index(tmp_path, "-e", encoder, "-o", "nonsense=1"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"encoder {encoder!r} has no option nonsense" in err
    assert "Traceback" not in err and "TypeError" not in err


def test_an_ill_typed_option_names_what_it_accepts(tmp_path, capsys):
    code = main(_index(tmp_path, "-e", "clip/vit-b-16", "-o", "patches=sometimes"))
    err = capsys.readouterr().err
    assert code == 2 and "patches='sometimes'" in err and "true or false" in err
    code = main(_index(tmp_path, "-o", "context=wide"))
    err = capsys.readouterr().err
    assert code == 2 and "context='wide'" in err and "an integer" in err


def test_a_bad_pair_is_a_usage_error(tmp_path, capsys):
    assert main(_index(tmp_path, "-o", "nokey")) == 2
    assert "bad --option 'nokey'" in capsys.readouterr().err


def test_plugins_list_shows_every_components_options(capsys):
    assert main(["plugins", "list", "--json"]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    colpali = rows["plugins.colpali"]["options"]["encoder:colpali/v1.3"]
    trust = next(o for o in colpali if o["name"] == "trust_remote_code")
    assert (trust["type"], trust["default"], trust["stage"]) == ("bool", False, "open")
    assert trust["help"]
    faiss = {o["name"]: o for o in rows["indexers.faiss"]["options"]["indexer:faiss"]}
    assert faiss["index_type"]["stage"] == "build" and faiss["nprobe"]["stage"] == "search"
    assert faiss["index_type"]["choices"] == ["auto", "flat", "hnsw", "ivf", "ivfpq"]
    assert rows["indexers.memory"]["options"] == {"indexer:memory": []}
    assert main(["plugins", "list"]) == 0
    text = capsys.readouterr().out
    assert "options of encoder:colpali/v1.3 (and 2 more): model (str, build)" in text
    assert "trust_remote_code (bool, default false, open)" in text
