"""Image files: every mode and container comes out as upright 8-bit RGB pages.

Inputs are generated with PIL at test time; decoding is real PIL, nothing mocked.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retriever.errors import BadInputError
from retriever.ingest import normalize_image, open_document
from retriever.types import Page

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _pages(path: Path, **kwargs) -> list[Page]:
    doc = open_document(path, **kwargs)
    pages = list(doc.pages())
    assert doc.kind == "image" and doc.page_count == len(pages)
    for number, page in enumerate(pages, start=1):
        assert page.page_number == number and page.dpi is None
        assert page.image is not None and page.image.mode == "RGB"
        assert (page.width, page.height) == page.image.size == doc.page_sizes[number - 1]
        assert page.source == str(path) and page.doc_id == doc.doc_id
        assert page.regions == [] and page.has_text_layer is False
    return pages


def _pixel(page: Page, xy: tuple[int, int]) -> tuple[int, ...]:
    return page.image.getpixel(xy)  # type: ignore[union-attr]


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path) -> None:
    # Stored 60x40 with the top half red; orientation 6 = "rotate 90 clockwise to view",
    # so the upright image is 40x60 with the red half on the right.
    image = Image.new("RGB", (60, 40), BLUE)
    image.paste(RED, (0, 0, 60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    image.save(path, exif=exif, quality=95)

    assert open_document(path, render=False).page_sizes == ((40, 60),)
    (page,) = _pages(path)
    assert page.image.size == (40, 60)
    assert _close(_pixel(page, (35, 30)), RED) and _close(_pixel(page, (5, 30)), BLUE)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (32, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink
    (page,) = _pages(path)
    assert _close(_pixel(page, (8, 8)), RED, tol=20)


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 0x4000, 0x8000, 0xFFFF]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "scan16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    (page,) = _pages(path)
    gray = np.asarray(page.image)[0, :, 0]
    assert gray.tolist() == [0, 64, 128, 255]  # a plain convert("L") would clip to 255s


def test_32_bit_and_float_images_are_scaled_by_range(tmp_path: Path) -> None:
    wide = np.array([[-1000, 0, 1000]], dtype=np.int32)
    gray = np.asarray(normalize_image(Image.fromarray(wide)))[0, :, 0]
    assert gray.tolist() == [0, 128, 255]
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    gray = np.asarray(normalize_image(Image.fromarray(unit)))[0, :, 0]
    assert gray.tolist() == [0, 128, 255]


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([*RED, *BLUE] + [0] * (254 * 3))
    image.paste(1, (5, 0, 10, 10))  # right half blue, left half index 0 = transparent
    path = tmp_path / "logo.png"
    image.save(path, transparency=0)
    (page,) = _pages(path)
    assert _pixel(page, (1, 1)) == WHITE and _pixel(page, (8, 8)) == BLUE


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (12, 4), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (4, 0, 8, 4))
    image.paste((0, 0, 255, 128), (8, 0, 12, 4))
    path = tmp_path / "overlay.png"
    image.save(path)
    (page,) = _pages(path)
    assert _pixel(page, (1, 1)) == WHITE  # fully transparent black is paper, not ink
    assert _pixel(page, (5, 1)) == RED
    assert _close(_pixel(page, (10, 1)), (127, 127, 255), tol=2)  # half blue over white


@pytest.mark.parametrize("mode", ["L", "LA", "1", "P", "YCbCr"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"m_{mode}.{'tiff' if mode == 'YCbCr' else 'png'}"
    Image.new("RGB", (8, 8), WHITE).convert(mode).save(path)
    (page,) = _pages(path)
    assert _pixel(page, (3, 3)) == WHITE


def test_multipage_tiff_gives_every_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (30 + 10 * i, 20), color) for i, color in
              enumerate([RED, BLUE, (0, 255, 0)])]
    path = tmp_path / "fax.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    pages = _pages(path)
    assert [p.image.size for p in pages] == [(30, 20), (40, 20), (50, 20)]
    assert [_pixel(p, (2, 2)) for p in pages] == [RED, BLUE, (0, 255, 0)]


def test_gif_gives_first_frame_only(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 2
    (page,) = _pages(path)
    assert _pixel(page, (8, 8)) == RED


@pytest.mark.parametrize("suffix", [".webp", ".bmp", ".png", ".jpeg"])
def test_common_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.new("RGB", (24, 12), BLUE).save(path, **options)
    (page,) = _pages(path)
    assert page.image.size == (24, 12) and _close(_pixel(page, (12, 6)), BLUE)


def test_misnamed_image_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "actually_jpeg.png"
    Image.new("RGB", (8, 8), RED).save(path, format="JPEG")
    (page,) = _pages(path)
    assert _close(_pixel(page, (4, 4)), RED)


def test_render_false_gives_sizes_without_pixels(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.new("RGB", (24, 12)).save(path)
    (page,) = open_document(path, render=False).pages()
    assert page.image is None and (page.width, page.height) == (24, 12)


# --- bad image input ------------------------------------------------------------------


def _error(path: Path, **kwargs) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        list(open_document(path, **kwargs).pages())
    err = info.value
    assert err.path == str(path) and str(path) in str(err) and err.reason in str(err)
    return err


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some words, not pixels\n" * 5)
    err = _error(path)
    assert err.reason == "corrupt" and "not a recognized image" in err.detail


def test_truncated_image_is_corrupt_naming_the_page(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    err = _error(path)
    assert err.reason == "corrupt" and "page 1" in err.detail


def test_image_over_the_pixel_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    err = _error(path, max_pixels=5_000)
    assert err.reason == "too-large" and "100x100" in err.detail


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims a size but has no pixel data: only a header check can pass it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_claimed_size_over_default_cap_is_too_large_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "claims_100mp.png"
    _png_header_only(path, 10_000, 10_000)  # 100 MP: over our 64 MP default
    err = _error(path)
    assert err.reason == "too-large" and "over the cap" in err.detail


def test_pil_decompression_bomb_gets_our_cap_not_pillows(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_header_only(path, 30_000, 30_000)  # 900 MP: over Pillow's own limit as well
    err = _error(path)
    assert err.reason == "too-large" and "over the cap of 64,000,000 pixels" in err.detail


def test_multipage_tiff_checks_every_frame_against_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tif"
    Image.new("L", (10, 10)).save(path, save_all=True, append_images=[Image.new("L", (100, 100))])
    err = _error(path, max_pixels=1_000)
    assert err.reason == "too-large" and "page 2" in err.detail
