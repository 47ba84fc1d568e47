import io
import zlib
from pathlib import Path

import pytest
from PIL import Image

from shopai.images.storage import ImageRejected, ImageStore

from ..factories import image_bytes


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path, max_pixels=4_000_000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_accepted_formats_are_reencoded_to_webp(store: ImageStore, fmt: str):
    stored = store.save(image_bytes(fmt))
    main = store.root / stored.content_hash[:2] / f"{stored.content_hash}.webp"
    thumb = store.root / stored.content_hash[:2] / f"{stored.content_hash}-thumb.webp"
    with Image.open(main) as image:
        assert image.format == "WEBP"
        assert image.size == (64, 48)
    assert thumb.exists()


def test_name_is_the_hash_of_the_content(store: ImageStore):
    red = store.save(image_bytes(color=(255, 0, 0)))
    blue = store.save(image_bytes(color=(0, 0, 255)))
    again = store.save(image_bytes(color=(255, 0, 0)))
    assert red.content_hash != blue.content_hash
    assert red.content_hash == again.content_hash
    assert len(red.content_hash) == 64


def test_metadata_is_stripped(store: ImageStore):
    image = Image.new("RGB", (32, 32), (10, 20, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS info
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, comment=b"hidden")
    stored = store.save(buffer.getvalue())
    data = (store.root / stored.content_hash[:2] / f"{stored.content_hash}.webp").read_bytes()
    assert b"SecretCam" not in data and b"EXIF" not in data and b"hidden" not in data


def test_large_images_are_scaled_down(store: ImageStore):
    stored = store.save(image_bytes(size=(3000, 1000)))
    assert (stored.width, stored.height) == (1600, 533)


@pytest.mark.parametrize(
    "data",
    [
        b"hello, I am a text file",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        b"",
        image_bytes("PNG")[:60],  # truncated
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    ],
    ids=["text", "pdf", "empty", "truncated-png", "svg"],
)
def test_non_images_are_refused(store: ImageStore, data: bytes):
    with pytest.raises(ImageRejected):
        store.save(data)
    assert not any(store.root.rglob("*.webp"))


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG header claiming a huge canvas: decoding it would need gigabytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return len(payload).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [3000, 60000])
def test_decompression_bombs_are_refused_before_decoding(store: ImageStore, side: int):
    with pytest.raises(ImageRejected, match="too large"):
        store.save(_png_bomb(side, side))


def test_delete_removes_both_files(store: ImageStore):
    stored = store.save(image_bytes())
    store.delete(stored.content_hash)
    assert not any(store.root.rglob("*.webp"))


def test_a_thin_image_within_the_pixel_budget_is_refused_by_its_side(tmp_path: Path):
    """1 x 39,000,000 pixels is under a 40-megapixel budget, yet costs 780 MiB to decode."""
    store = ImageStore(tmp_path, max_pixels=40_000_000)
    with pytest.raises(ImageRejected, match="pixels a side"):
        store.save(_png_bomb(39_000_000, 1))
    with pytest.raises(ImageRejected, match="pixels a side"):
        store.save(_png_bomb(1, 39_000_000))
