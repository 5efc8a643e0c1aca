"""Image files as pages: PIL decoding, size checks before decoding, and normalization.

Every page leaves here as an 8-bit RGB image the right way up, whatever the file held:

* EXIF orientation applied (phones store portrait photos as rotated landscape pixels);
* CMYK, YCbCr, palette, 1-bit and grayscale converted to RGB;
* 16-bit grayscale (``I;16*``) scaled to 8 bits (``>> 8``), not clipped as a plain
  ``convert("L")`` would (that turns almost every 16-bit scan white); 32-bit ``I`` and
  float ``F`` images are scaled by their value range, since their bit depth is unknown;
* transparency (alpha channel, or a palette / colour-key ``transparency``) composited on
  white, which is what a page "behind" a transparent logo or scan looks like.

Multi-page TIFFs give one page per frame. Other animated formats (GIF, animated WebP,
APNG, MPO) give their first frame only: later frames are animation, not pages.

Sizes come from the header (``Image.open`` decodes nothing), so a file over the pixel cap
is refused as "too-large" before any memory is spent on it. There is one cap,
``max_pixels``, for images as for PDF pages, with one message (``pixel_cap_error``):
Pillow's own decompression-bomb check, which runs while it identifies a file (above
``2 * Image.MAX_IMAGE_PIXELS``, about 179 megapixels), would otherwise refuse a big image
first with its own words and a limit that raising ``max_pixels`` cannot lift, so a file it
refuses is identified again without it and checked against ``max_pixels`` like any other.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ALLOWED_FORMATS",
    "ImageInfo",
    "pixel_cap_error",
    "probe_image",
    "iter_image_frames",
    "normalize_image",
]

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BadInputError

DEFAULT_MAX_PIXELS = 64_000_000
PIXEL_CAP_HINT = (
    "downscale it, or raise the pixel cap with max_pixels (e.g. "
    "Retriever(..., max_pixels=200_000_000))"
)
# Only raster formats we list as supported. Restricting Image.open's sniffing also keeps a
# renamed EPS (which PIL would hand to Ghostscript) or other exotic formats out.
# (Multi-picture JPEGs open through "JPEG" and come back with format "MPO".)
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "DIB", "GIF")
_MULTI_PAGE_FORMATS = frozenset({"TIFF"})
_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # transpose / rotate 90 / transverse / rotate 270
_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the format and each page's (width, height) after EXIF."""

    format: str
    sizes: tuple[tuple[int, int], ...]

    @property
    def page_count(self) -> int:
        return len(self.sizes)


def _where(page: int | None) -> str:
    return f"page {page}: " if page is not None else ""


@contextmanager
def _decode_errors(path: Path, page: int | None = None) -> Iterator[None]:
    """Turn whatever PIL raises on a bad file into a BadInputError naming file and page."""
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel cap; PIL's warning below its hard limit is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except BadInputError:
        raise
    except Image.DecompressionBombError as exc:
        # Only past our own check, with max_pixels above Pillow's limit, inside a decoder
        # that checks again (GIF frames, TIFF tiles).
        raise BadInputError(
            str(path), "too-large", f"{_where(page)}over Pillow's own pixel limit: {exc}",
            hint="downscale it (Pillow's limit is PIL.Image.MAX_IMAGE_PIXELS)",
        ) from exc
    except MemoryError as exc:
        raise BadInputError(str(path), "too-large", f"{_where(page)}out of memory") from exc
    except UnidentifiedImageError as exc:
        raise BadInputError(
            str(path), "corrupt", f"{_where(page)}not a recognized image "
            f"(expected one of {', '.join(ALLOWED_FORMATS)})",
        ) from exc
    except FileNotFoundError as exc:
        raise BadInputError(str(path), "not-found", exc.strerror or "") from exc
    except PermissionError as exc:
        raise BadInputError(str(path), "unreadable", exc.strerror or "") from exc
    except Exception as exc:  # noqa: BLE001 - PIL's decoders raise OSError, SyntaxError,
        # ValueError, EOFError, struct.error, IndexError... on broken bytes; every one of
        # them means "this file is damaged", and the batch must go on to the next file.
        raise BadInputError(
            str(path), "corrupt", f"{_where(page)}{type(exc).__name__}: {exc}"
        ) from exc


def pixel_cap_error(
    path: str | Path, page: int, width: int, height: int, max_pixels: int, how: str = ""
) -> BadInputError:
    """The one "too-large" error for a page over ``max_pixels``, image or PDF; ``how``
    says how the size was reached (a PDF's lowest DPI)."""
    return BadInputError(
        str(path), "too-large",
        f"page {page} is {width}x{height} = {width * height:,} pixels{how}, over the cap of "
        f"{max_pixels:,} pixels",
        hint=PIXEL_CAP_HINT,
    )


def _open_past_pillow_limit(path: Path) -> Image.Image | None:
    """``Image.open`` without its decompression-bomb check: the header only, as there.

    Pillow's registry (``Image.OPEN``: format -> (factory, accept)) is what ``Image.open``
    itself walks; None when no allowed format accepts the file or the registry differs.
    """
    Image.init()
    with open(path, "rb") as handle:
        prefix = handle.read(16)
    for fmt in ALLOWED_FORMATS:
        factory, accept = getattr(Image, "OPEN", {}).get(fmt, (None, None))
        if factory is None:
            continue
        verdict = accept(prefix) if accept else True
        if verdict and not isinstance(verdict, str):  # a str is a "maybe" warning
            return factory(str(path))  # opens (and later closes) the file itself
    return None


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path, formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        image = _open_past_pillow_limit(path)
        if image is None:
            raise
        return image


def _check_cap(path: Path, size: tuple[int, int], max_pixels: int, page: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise BadInputError(str(path), "corrupt", f"page {page}: image size {width}x{height}")
    if width * height > max_pixels:
        raise pixel_cap_error(path, page, width, height, max_pixels)


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the rotation hint
        orientation = None
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def probe_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read headers only: format, page count and oriented sizes; enforce the pixel cap."""
    path = Path(path)
    with _decode_errors(path), _open(path) as image:
        fmt = image.format or "unknown"
        count = int(getattr(image, "n_frames", 1)) if fmt in _MULTI_PAGE_FORMATS else 1
        sizes = []
        for index in range(count):
            if index:
                image.seek(index)  # reads the next frame's header, not its pixels
            _check_cap(path, image.size, max_pixels, index + 1)
            sizes.append(_oriented_size(image))
    return ImageInfo(fmt, tuple(sizes))


def iter_image_frames(
    path: str | Path, page_count: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[Image.Image]:
    """Decode and normalize pages 1..page_count one at a time (RGB, upright)."""
    path = Path(path)
    with _decode_errors(path):
        image = _open(path)
    with image:
        for index in range(page_count):
            with _decode_errors(path, index + 1):
                if index:
                    image.seek(index)
                # The file may have changed since probing; never decode past the cap.
                _check_cap(path, image.size, max_pixels, index + 1)
                page = normalize_image(image)
            yield page


def normalize_image(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image, EXIF-upright, alpha on white; ``image`` is left as it was."""
    image.load()  # decode now, so a damaged pixel stream fails here as "corrupt"
    try:
        # Always a new image (a plain copy when there is no rotation), so the result never
        # depends on the source file staying open.
        upright = ImageOps.exif_transpose(image)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - a malformed EXIF block only loses the rotation hint
        upright = image.copy()
    return _to_rgb(upright)


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        if mode == "La":  # premultiplied, no direct path to RGBA
            image = image.convert("LA")
        rgba = image.convert("RGBA")  # applies palette / colour-key transparency
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if mode == "RGB":
        return image
    # CMYK (Pillow already undoes Adobe's inverted CMYK JPEGs), YCbCr, LAB, HSV, P, L, 1.
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image)  # (h, w) uint16 for I;16*, int32 for I, float32 for F
    if image.mode.startswith("I;16"):
        gray = (pixels.astype(np.uint16) >> 8).astype(np.uint8)
    else:
        finite = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 0.0
        scaled: np.ndarray
        if image.mode == "F" and low >= 0.0 and high <= 1.0:
            scaled = pixels * 255.0  # a normalized float image
        elif low >= 0 and high <= 255:
            scaled = pixels  # already 8-bit values stored wide
        elif image.mode == "I" and low >= 0 and high <= 65535:
            scaled = pixels >> 8  # 16-bit values stored as 32-bit
        else:
            scaled = (pixels.astype(np.float32) - low) * (255.0 / max(high - low, 1e-12))
        gray = np.nan_to_num(np.clip(np.rint(scaled), 0, 255)).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
