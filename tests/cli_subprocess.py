"""Run the real ``retriever`` CLI (``python -m cli``) in a subprocess with test plugins.

The plugins are found the way installed ones are, through entry points: a ``dist-info``
directory written next to the test puts ``retriever_example_plugin`` (example/hashing)
and ``interrupt_plugin`` (slow/hashing, slow-lancedb) on the subprocess's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from repo_paths import REPO

ENTRY_POINTS = "[retriever]\nexample = retriever_example_plugin\nslow = interrupt_plugin\n"


def plugin_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    dist = site / "retriever_test_plugins-0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: retriever-test-plugins\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    path = [site, REPO / "tests" / "cli", REPO / "tests" / "plugins" / "example_plugin", REPO]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path)),
            "RETRIEVER_LOAD_PLUGINS": "example,slow", "RETRIEVER_HOME": str(tmp_path / "home"),
            "PYTHONUNBUFFERED": "1", **extra}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def run_cli(env: dict[str, str], *args: str | bytes,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run to the end; stdout and stderr as bytes (the CLI must write valid UTF-8)."""
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=env,
                          capture_output=True, timeout=timeout)


def run_cli_home(args: list[str], home: Path, cwd: Path = REPO,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (no third-party plugins, ``RETRIEVER_HOME=home``),
    output as text; a run that hangs fails the test instead of the whole suite."""
    import pytest

    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_HOME": str(home),
           "RETRIEVER_LOAD_PLUGINS": ""}
    try:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"retriever {' '.join(args)} hung for {timeout} s")
