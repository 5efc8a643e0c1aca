"""`retriever index --compress` and `collections info` in-process: the human and JSON
views of the compressor and the stored vectors, and exit 2 for a refused compressor."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app, main
from repo_paths import SAMPLES


runner = CliRunner()


pytestmark = pytest.mark.usefixtures("example_plugin")


def _index(home, *extra: str):
    return runner.invoke(app, ["index", str(SAMPLES / "annual-report.pdf"), "-c", "z",
                               "-e", "example/hashing", "--data-dir", str(home), "--json",
                               *extra])


def test_compress_is_shown_by_info_and_kept(tmp_path, capsys):
    assert _index(tmp_path, "--compress", "prune:3").exit_code == 0
    info = runner.invoke(app, ["collections", "info", "z", "--data-dir", str(tmp_path),
                               "--json"])
    details = json.loads(info.stdout)
    assert details["compressor"] == "prune:3,within_regions=true" and details["vectors"] > 0
    text = runner.invoke(app, ["collections", "info", "z", "--data-dir", str(tmp_path)]).stdout
    assert "compressor: prune:3,within_regions=true" in text and f"vectors:    {details['vectors']}" in text
    # errors go through ``main``, which turns them into a message and exit code 2
    argv = ["index", str(SAMPLES / "annual-report.pdf"), "-c", "z", "-e", "example/hashing",
            "--data-dir", str(tmp_path), "--force", "--compress", "merge:2"]
    assert main(argv) == 2
    assert "built with compressor prune:3,within_regions=true, not merge:2" \
        in capsys.readouterr().err


def test_compress_takes_the_compressors_options(tmp_path, capsys):
    assert _index(tmp_path, "--compress", "pool:4,linkage=ward,within_regions=off").exit_code == 0
    info = runner.invoke(app, ["collections", "info", "z", "--data-dir", str(tmp_path),
                               "--json"])
    assert json.loads(info.stdout)["compressor"] == "pool:4,linkage=ward"
    argv = ["index", str(SAMPLES / "annual-report.pdf"), "-c", "z", "-e", "example/hashing",
            "--data-dir", str(tmp_path), "--force", "--compress", "pool:4,linkage=average"]
    assert main(argv) == 2
    assert "built with compressor pool:4,linkage=ward, not pool:4,linkage=average" \
        in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nope", "pool:", "pool:0", "pool:3,within_regions=maybe",
                                   "pool:3,colour"])
def test_bad_compress_value_exits_2_without_traceback(tmp_path, capsys, value):
    argv = ["index", str(SAMPLES / "annual-report.pdf"), "-c", "z", "-e", "example/hashing",
            "--data-dir", str(tmp_path), "--compress", value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("compress" in err or "factor" in err
                                       or "within_regions" in err)
