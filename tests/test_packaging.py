"""The wheel installs our four top-level packages, complete, into a clean virtualenv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from repo_paths import REPO

PACKAGES = ("retriever", "indexers", "plugins", "cli")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(REPO)], check=True, timeout=300)
    (found,) = out.glob("vision_retriever-*.whl")
    return found


def test_wheel_holds_exactly_our_packages_and_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == set(PACKAGES)
    source = {p.relative_to(REPO).as_posix() for pkg in PACKAGES
              for p in (REPO / pkg).rglob("*.py") if "__pycache__" not in p.parts}
    assert source <= set(names), sorted(source - set(names))
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "retriever = cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_wheel_installs_into_a_clean_virtualenv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Core dependencies only: the default extras (torch, lancedb) are not needed to import
    # the packages and run --help, which must not import them anyway.
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   timeout=600)
    code = ("import retriever, indexers, plugins, cli, sys; "
            "print(*[m.__file__ for m in (retriever, indexers, plugins, cli)], sep='\\n')")
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    for line, pkg in zip(out.stdout.split(), PACKAGES):
        assert str(env_dir) in line and f"/{pkg}/__init__.py" in line
    help_out = subprocess.run([str(env_dir / "bin" / "retriever"), "--help"], cwd=tmp_path,
                              capture_output=True, text=True)
    assert help_out.returncode == 0, help_out.stderr
    for command in ("index", "search", "collections", "plugins", "doctor"):
        assert command in help_out.stdout


def test_wheel_ships_the_report_templates(wheel):
    """``retriever search --html`` renders from files that are not Python modules."""
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(REPO).as_posix()
                 for p in (REPO / "retriever" / "report" / "templates").iterdir()}
    assert templates and templates <= names, sorted(templates - names)
