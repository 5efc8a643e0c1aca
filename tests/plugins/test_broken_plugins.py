"""Broken third-party plugins are warnings, not outages: the rest of the tool keeps working.

A real package with four broken entry points (an import error, an error inside
``register_encoders``, an error inside ``register_commands``, a misspelled hook name) is
pip-installed next to the working example plugin, and the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repo_paths import REPO, SAMPLES

HERE = Path(__file__).parent
BROKEN = {
    "broken_import": "retriever_dependency_that_is_not_installed",
    "broken_hook": "licence key missing for broken/encoder",
    "broken_commands": "cannot add the broken-hello command",
    "misspelled": "register_encoder",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target),
                    str(HERE / "example_plugin"), str(HERE / "broken_plugin")],
                   check=True, timeout=300)
    return target


def _cli(args: list[str], site: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
                "RETRIEVER_HOME": str(home), **env}
    full_env.pop("RETRIEVER_LOAD_PLUGINS", None)  # load what is installed, as a user would
    full_env.pop("RETRIEVER_RAISE_PLUGIN_ERRORS", None)
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=300)


def _assert_warned(stderr: str, skip: tuple[str, ...] = ()) -> None:
    for name, error in BROKEN.items():
        if name in skip:
            continue
        line = next((ln for ln in stderr.splitlines() if f"plugin {name!r}" in ln), None)
        assert line is not None and line.startswith("warning:"), stderr
        assert error in line, line
    assert "Traceback" not in stderr


def test_plugins_list_shows_the_broken_ones_with_their_errors(site, tmp_path):
    out = _cli(["plugins", "list", "--json"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    _assert_warned(out.stderr)
    rows = {row["name"]: row for row in map(json.loads, out.stdout.splitlines())}
    assert sorted(rows["example"]["components"]) == ["compressor:example/pairs",
                                                     "encoder:example/hashing"]
    assert not rows["example"]["broken"] and not rows["plugins.text"]["broken"]
    for name, error in BROKEN.items():
        assert rows[name]["broken"] and error in rows[name]["error"], rows[name]
        assert rows[name]["components"] == [] and not rows[name]["builtin"]
    text = _cli(["plugins", "list"], site, tmp_path)
    assert text.returncode == 0, text.stderr
    assert "broken_import 0.0.1 (third-party, BROKEN)" in text.stdout, text.stdout
    assert "   error: " in text.stdout and BROKEN["broken_import"] in text.stdout


def test_doctor_runs_and_lists_the_broken_plugins(site, tmp_path):
    out = _cli(["doctor", "--json"], site, tmp_path)
    _assert_warned(out.stderr)
    rows = {row["name"]: row for row in map(json.loads, out.stdout.splitlines())}
    for name, error in BROKEN.items():
        row = rows[f"plugin {name}"]
        assert not row["ok"] and error in row["detail"], row
        assert "retriever-broken-plugin" in row["fix"], row
    assert rows["plugin example"]["ok"]
    others_ok = all(r["ok"] for n, r in rows.items() if not n.startswith("plugin "))
    if others_ok:  # only plugins failed: the plugin exit code, not "missing dependency"
        assert out.returncode == 7, out.stdout


def test_the_rest_of_the_tool_works_beside_broken_plugins(site, tmp_path):
    out = _cli(["example-hello", "--name", "x"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "hello x from retriever-example-plugin" in out.stdout
    _assert_warned(out.stderr, skip=("broken_hook",))  # no encoder was needed: hook not run
    invoice = SAMPLES / "invoice.pdf"
    out = _cli(["index", str(invoice), "-c", "plug", "-e", "example/hashing", "--json"],
               site, tmp_path)
    assert out.returncode == 0, out.stderr
    _assert_warned(out.stderr)
    out = _cli(["search", "bank transfer IBAN", "-c", "plug", "--json"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["source"] == str(invoice)
    out = _cli(["index", str(invoice), "-c", "other", "-e", "misspelled/encoder"], site, tmp_path)
    assert out.returncode == 2 and "unknown encoder 'misspelled/encoder'" in out.stderr


@pytest.mark.parametrize(("name", "exception"), [
    ("broken_import", "ModuleNotFoundError"),
    ("broken_hook", "RuntimeError"),
    ("broken_commands", "ValueError"),
])
def test_raise_plugin_errors_gives_plugin_authors_the_traceback(site, tmp_path, name, exception):
    out = _cli(["plugins", "list"], site, tmp_path, RETRIEVER_LOAD_PLUGINS=name,
               RETRIEVER_RAISE_PLUGIN_ERRORS="1")
    assert out.returncode != 0
    assert "Traceback" in out.stderr and exception in out.stderr, out.stderr
    assert BROKEN[name] in out.stderr


def test_raise_plugin_errors_refuses_a_misspelled_hook(site, tmp_path):
    out = _cli(["plugins", "list"], site, tmp_path, RETRIEVER_LOAD_PLUGINS="misspelled",
               RETRIEVER_RAISE_PLUGIN_ERRORS="1")
    assert out.returncode == 7, out.stderr
    assert "'misspelled'" in out.stderr and "register_encoder" in out.stderr
    assert "register_encoders" in out.stderr  # the hint names the hook it meant
