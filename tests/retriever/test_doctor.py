"""``retriever doctor`` checks against the real tools installed on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retriever import doctor, plugin_host
from retriever.errors import ExitCode, MissingDependencyError
from retriever.hookspecs import hookimpl


def _by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_all_checks_pass_here():
    checks = doctor.run_checks()
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    names = _by_name(checks)
    assert {"tesseract", "tesseract language eng", *doctor.POPPLER_TOOLS} <= set(names)
    assert {f"python {module}" for module, _, _ in doctor.PYTHON_PACKAGES} <= set(names)
    assert "data directory" in names
    assert names["tesseract"].detail.split()[-1][0].isdigit()  # "... version 5.3.0"
    assert "poppler" in names["pdftotext"].detail
    assert all(c.fix is None for c in checks)
    doctor.require_poppler()
    doctor.require_tesseract()


def test_hidden_binaries_fail_with_their_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    checks = _by_name(doctor.run_checks())
    assert not checks["tesseract"].ok
    assert checks["tesseract"].fix == "apt-get install tesseract-ocr tesseract-ocr-eng"
    for tool in doctor.POPPLER_TOOLS:
        assert not checks[tool].ok and checks[tool].fix == "apt-get install poppler-utils"
    assert checks["data directory"].ok  # unaffected by PATH
    with pytest.raises(MissingDependencyError) as info:
        doctor.require_poppler()
    assert info.value.hint == "apt-get install poppler-utils"
    with pytest.raises(MissingDependencyError) as info:
        doctor.require_tesseract()
    assert info.value.hint == "apt-get install tesseract-ocr tesseract-ocr-eng"


def test_missing_language_names_its_package():
    checks = _by_name(doctor.check_tesseract("eng+chi_sim_zz"))
    assert checks["tesseract language eng"].ok
    bad = checks["tesseract language chi_sim_zz"]
    assert not bad.ok and bad.fix == "apt-get install tesseract-ocr-chi-sim-zz"


def test_missing_python_package_gives_pip_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        doctor, "PYTHON_PACKAGES", (("no_such_pkg_xyz", "no-such-pkg-xyz", "no-such-pkg-xyz>=1"),)
    )
    (check,) = doctor.check_python_packages()
    assert not check.ok and check.fix == "pip install 'no-such-pkg-xyz>=1'"


def test_data_dir_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RETRIEVER_HOME", str(tmp_path / "not" / "yet"))
    check = doctor.check_data_dir()
    assert check.ok and "will be created" in check.detail
    assert not (tmp_path / "not").exists()  # doctor does not create anything
    a_file = tmp_path / "file"
    a_file.write_text("x")
    monkeypatch.setenv("RETRIEVER_HOME", str(a_file))
    check = doctor.check_data_dir()
    assert not check.ok and check.fix.startswith("export RETRIEVER_HOME=")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv("RETRIEVER_HOME", str(locked))
    try:
        check = doctor.check_data_dir()
    finally:
        locked.chmod(0o700)
    assert not check.ok and "chown" in check.fix


def test_doctor_does_not_import_heavy_packages():
    code = (
        "import sys; from retriever import doctor; doctor.run_checks(); "
        "heavy = {'torch', 'transformers', 'lancedb', 'pytesseract'} & set(sys.modules); "
        "print(sorted(heavy)); sys.exit(1 if heavy else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class _BrokenPlugin:
    @hookimpl
    def register_encoders(self, register):
        raise RuntimeError("cannot find my weights")


def test_a_broken_plugin_is_a_failed_check_with_the_plugin_exit_code():
    plugin_host.get_plugin_manager().register(_BrokenPlugin(), name="broken-one")
    checks = _by_name(doctor.run_checks())
    found = checks["plugin broken-one"]
    assert not found.ok and "RuntimeError: cannot find my weights" in found.detail
    assert found.fix == "pip uninstall broken-one"
    others = [c for c in checks.values() if c is not found]
    if all(c.ok for c in others):
        assert doctor.exit_code(list(checks.values())) == ExitCode.PLUGIN
    assert doctor.exit_code([c for c in others if c.ok]) == ExitCode.OK
