"""Built-in OCR plugin: tesseract through pytesseract.

Words come from ``image_to_data`` (TSV) and are grouped the way tesseract's own layout
analysis grouped them: ``(block, par)`` into paragraphs, ``(block, par, line)`` into lines.
pytesseract is imported only when the engine is used, so registering the plugin is free.
"""

from __future__ import annotations

__all__ = ["OPTIONS", "TesseractEngine", "register_ocr_engines"]

import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from retriever.doctor import (
    TESSERACT_INSTALL,
    TESSERACT_MIN_MAJOR,
    tesseract_language_package,
)
from retriever.errors import MissingDependencyError, RetrieverError, UsageError
from retriever.hookspecs import hookimpl
from retriever.options import Option
from retriever.regions.layout import WordTuple, normalize_box, regions_from_words
from retriever.specs import OCREngineSpec
from retriever.types import Region

if TYPE_CHECKING:
    from PIL.Image import Image

PYTESSERACT_INSTALL = "pip install pytesseract"
_LANG = re.compile(r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")
_VALID_PSM = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})  # 0 and 2 give no words
_WORD_LEVEL = 5  # TSV level of a word row (1 page, 2 block, 3 par, 4 line)

#: every option of the tesseract engine; defaults are TesseractEngine's own
OPTIONS: tuple[Option, ...] = (
    Option("lang", str, "eng", "tesseract language code(s), e.g. eng or deu+eng"),
    Option("psm", int, 3, "page segmentation mode", choices=tuple(sorted(_VALID_PSM))),
    Option("min_confidence", float, 0.0, "words below this confidence (0 to 1) are dropped",
           minimum=0),
    Option("timeout", float, 120, "seconds per page before tesseract is stopped", minimum=0),
)


class _TesseractEnviron(Mapping[str, str]):
    """A live view of ``os.environ`` plus ``OMP_THREAD_LIMIT=1`` when that is unset.

    Tesseract's OpenMP threads oversubscribe badly when several pages are OCRed at once
    (seconds become minutes). Setting the variable in ``os.environ`` would also cap torch,
    whose OpenMP runtime reads it when it loads, so only tesseract's children see it.
    """

    _KEY = "OMP_THREAD_LIMIT"

    def __getitem__(self, key: str) -> str:
        if not isinstance(key, str):  # os.get_exec_path probes b"PATH"
            raise KeyError(key)
        if key in os.environ:
            return os.environ[key]
        if key == self._KEY:
            return "1"
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from list(os.environ)
        if self._KEY not in os.environ:
            yield self._KEY

    def __len__(self) -> int:
        return len(os.environ) + (self._KEY not in os.environ)


_ENVIRON = _TesseractEnviron()


def _pytesseract() -> ModuleType:
    try:
        import pytesseract
    except ImportError as exc:
        raise MissingDependencyError(
            "the pytesseract Python package is not installed", hint=PYTESSERACT_INSTALL
        ) from exc
    # pytesseract passes its module-level ``environ`` to every tesseract it spawns; giving
    # it our view is the one place to set the thread limit for tesseract alone.
    inner = getattr(pytesseract, "pytesseract", None)
    if inner is not None and hasattr(inner, "environ") and inner.environ is not _ENVIRON:
        inner.environ = _ENVIRON
    return pytesseract


def _prepare(image: Image) -> Image:
    """A copy in a mode tesseract reads, to be handed over as an uncompressed PNM file.

    pytesseract writes the image in its ``format`` (the source's, unless told): a JPEG
    would be re-encoded lossily, a format it does not know refused, and PNG costs ~0.1 s
    of compression per 150-dpi page that tesseract then spends undoing; PNM is a copy of
    the pixels (4 ms).
    """
    from PIL import Image as PILImage

    if image.mode in ("1", "L", "RGB"):
        prepared = image.copy()
    elif "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        prepared = PILImage.new("RGB", rgba.size, (255, 255, 255))
        prepared.paste(rgba, mask=rgba.getchannel("A"))  # transparent -> white paper
    else:
        prepared = image.convert("RGB")
    prepared.format = "PPM"  # PIL writes P4/P5/P6 by mode
    return prepared


class TesseractEngine:
    """OCR with tesseract: paragraphs > lines > words, boxes normalized to the image."""

    name = "tesseract"

    def __init__(
        self, lang: str = "eng", psm: int = 3, min_confidence: float = 0.0, timeout: float = 120
    ) -> None:
        if not isinstance(lang, str) or not _LANG.match(lang):
            raise UsageError(f"tesseract: invalid language {lang!r}",
                             hint="use tesseract codes joined by '+', e.g. eng or eng+deu")
        if psm not in _VALID_PSM:
            raise UsageError(f"tesseract: unsupported page segmentation mode {psm!r}",
                             hint=f"use one of {sorted(_VALID_PSM)} (3 = automatic)")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise UsageError(f"tesseract: min_confidence must be in [0, 1], got {min_confidence}")
        if not float(timeout) > 0:
            raise UsageError(f"tesseract: timeout must be positive, got {timeout}")
        self.lang = lang
        self.psm = int(psm)
        self.min_confidence = float(min_confidence)
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return (f"TesseractEngine(lang={self.lang!r}, psm={self.psm}, "
                f"min_confidence={self.min_confidence}, timeout={self.timeout:g})")

    def check_available(self) -> None:
        """Raise MissingDependencyError naming the install command unless OCR can run."""
        pt = _pytesseract()
        cmd = pt.pytesseract.tesseract_cmd
        if shutil.which(cmd) is None:
            raise MissingDependencyError(f"tesseract binary {cmd!r} not found",
                                         hint=TESSERACT_INSTALL)
        try:
            version = pt.get_tesseract_version()  # not cached: the binary may have changed
        except (pt.TesseractNotFoundError, OSError) as exc:
            raise MissingDependencyError(f"tesseract cannot run: {exc}",
                                         hint=TESSERACT_INSTALL) from exc
        except SystemExit as exc:  # pytesseract exits on a version string it cannot parse
            raise MissingDependencyError(f"tesseract version unusable: {exc}",
                                         hint=TESSERACT_INSTALL) from exc
        if version.major < TESSERACT_MIN_MAJOR:
            raise MissingDependencyError(
                f"tesseract {version} is too old; {TESSERACT_MIN_MAJOR}.0 or newer is needed",
                hint=TESSERACT_INSTALL)
        try:
            installed = set(pt.get_languages())
        except (pt.TesseractNotFoundError, OSError) as exc:
            raise MissingDependencyError(f"tesseract cannot list languages: {exc}",
                                         hint=TESSERACT_INSTALL) from exc
        missing = [code for code in self.lang.split("+") if code not in installed]
        if missing:
            packages = " ".join(tesseract_language_package(code) for code in missing)
            raise MissingDependencyError(
                f"tesseract language data missing: {', '.join(missing)} "
                f"(installed: {', '.join(sorted(installed)) or 'none'})",
                hint=f"apt-get install {packages}")

    def _image_to_data(self, image: Image) -> dict[str, list[Any]]:
        pt = _pytesseract()
        try:
            # Always an image, never a path: pytesseract saves it to its own absolute temp
            # file, so no user file name (say ``-l.png``) reaches tesseract's command line.
            return pt.image_to_data(image, lang=self.lang, config=f"--psm {self.psm}",
                                    output_type=pt.Output.DICT, timeout=self.timeout)
        except pt.TesseractNotFoundError as exc:
            raise MissingDependencyError(f"tesseract not found: {exc}",
                                         hint=TESSERACT_INSTALL) from exc
        except SystemExit as exc:
            raise MissingDependencyError(f"tesseract version unusable: {exc}",
                                         hint=TESSERACT_INSTALL) from exc
        except pt.TesseractError as exc:
            if "language" in str(exc.message).lower():
                packages = " ".join(tesseract_language_package(c) for c in self.lang.split("+"))
                raise MissingDependencyError(f"tesseract: {exc.message}",
                                             hint=f"apt-get install {packages}") from exc
            raise RetrieverError(f"tesseract failed: {exc.message}") from exc
        except RuntimeError as exc:  # pytesseract's timeout; the process is already killed
            raise RetrieverError(
                f"tesseract timed out after {self.timeout:g}s on a {image.width}x{image.height} "
                "image", hint="raise the OCR timeout or rasterize at a lower DPI") from exc

    def recognize(self, image: Image) -> list[Region]:
        """Paragraph regions in tesseract's reading order; ``[]`` for an image without text."""
        prepared = _prepare(image)
        width, height = prepared.size
        if width == 0 or height == 0:
            return []
        data = self._image_to_data(prepared)
        words: list[WordTuple] = []
        for i, text in enumerate(data.get("text", ())):
            if int(data["level"][i]) != _WORD_LEVEL or not str(text).strip():
                continue
            conf = float(data["conf"][i])
            if conf < 0:  # -1 marks rows tesseract has no recognition for
                continue
            conf = min(1.0, conf / 100.0)
            if conf < self.min_confidence:
                continue
            left, top = float(data["left"][i]), float(data["top"][i])
            right, bottom = left + float(data["width"][i]), top + float(data["height"][i])
            bbox = normalize_box(left, top, right, bottom, width, height)
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            words.append((bbox, str(text), conf, *key))
        return regions_from_words(words, source="ocr")


@hookimpl
def register_ocr_engines(register: Callable[[OCREngineSpec], None]) -> None:
    register(
        OCREngineSpec(
            name="tesseract",
            factory=TesseractEngine,
            description="tesseract OCR (pytesseract): paragraphs, lines and words with boxes",
            options=OPTIONS,
        )
    )
