"""A third-party plugin package installs and registers exactly like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repo_paths import REPO, SAMPLES

PLUGIN_DIR = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(PLUGIN_DIR)],
                   check=True, timeout=300)
    return target


def _cli(args: list[str], site: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
           "RETRIEVER_HOME": str(home)}
    env.pop("RETRIEVER_LOAD_PLUGINS", None)  # load what is installed, as a user would
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_installed_plugin_is_listed_with_its_hooks_and_version(plugin_site, tmp_path):
    out = _cli(["plugins", "list", "--json"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in map(json.loads, out.stdout.splitlines())}
    example = rows["example"]
    assert example["version"] == "0.3.1" and not example["builtin"]
    assert {"register_encoders", "register_compressors", "register_commands"} \
        <= set(example["hooks"])
    assert sorted(example["components"]) == ["compressor:example/pairs",
                                             "encoder:example/hashing"]
    assert rows["plugins.text"]["builtin"]


def test_plugin_encoder_indexes_and_searches_from_the_cli(plugin_site, tmp_path):
    invoice = SAMPLES / "invoice.pdf"
    out = _cli(["index", str(invoice), "-c", "plug", "--encoder", "example/hashing", "--json"],
               plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pages"] == 1
    out = _cli(["search", "bank transfer IBAN", "-c", "plug", "--json"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    hit = json.loads(out.stdout.splitlines()[0])
    assert hit["source"] == str(invoice) and hit["page"] == 1
    assert any("IBAN" in r["text"] for r in hit["regions"])
    info = _cli(["collections", "info", "plug", "--json"], plugin_site, tmp_path)
    assert json.loads(info.stdout)["encoder"]["name"] == "example/hashing"


def test_plugin_compressor_shrinks_what_is_indexed(plugin_site, tmp_path):
    invoice = SAMPLES / "invoice.pdf"
    for name, extra in (("plain", []), ("pairs", ["--compress", "example/pairs"])):
        out = _cli(["index", str(invoice), "-c", name, "--encoder", "example/hashing",
                    "--json", *extra], plugin_site, tmp_path)
        assert out.returncode == 0, out.stderr
    info = {name: json.loads(_cli(["collections", "info", name, "--json"], plugin_site,
                                  tmp_path).stdout) for name in ("plain", "pairs")}
    assert info["plain"]["compressor"] is None
    assert info["pairs"]["compressor"] == "example/pairs"
    assert info["pairs"]["vectors"] == (info["plain"]["vectors"] + 1) // 2
    out = _cli(["search", "bank transfer IBAN", "-c", "pairs", "--json"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert any("IBAN" in r["text"] for r in json.loads(out.stdout.splitlines()[0])["regions"])


def test_plugin_adds_a_cli_command(plugin_site, tmp_path):
    out = _cli(["example-hello", "--name", "tests"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "hello tests from retriever-example-plugin" in out.stdout
