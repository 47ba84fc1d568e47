"""Verified, re-encoded, content-addressed image files.

Whatever arrives (an upload today, a model's output later) is decoded by Pillow
within a pixel budget, re-encoded to WebP without metadata and stored under the
SHA-256 of the result. Two products can therefore never overwrite each other's
image, whatever their names, and identical images are stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .models import image_path

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Longest side accepted before decoding. The pixel budget alone lets a 1 x 39,000,000
# PNG through (75 KB on disk, 780 MiB to decode and scale); no product photo needs
# a side longer than this, and WebP cannot store more than 16,383 anyway.
MAX_SOURCE_SIDE = 12_000
MAX_SIDE = 1600
THUMBNAIL_SIDE = 480
WEBP_QUALITY = 85


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message is safe to show."""


@dataclass(frozen=True)
class StoredImage:
    content_hash: str
    width: int
    height: int


def _decode(data: bytes, max_pixels: int, max_side: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        width, height = image.size
        if width * height > max_pixels or max(width, height) > max_side:
            raise ImageRejected(
                f"The image is too large ({width:,} x {height:,} pixels); the limit is "
                f"{max_pixels:,} pixels and {max_side:,} pixels a side."
            )
        image.verify()  # structural check; the image must be reopened afterwards
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("The image is too large to decode safely.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("The file is not a readable JPEG, PNG, WebP or GIF image.") from exc
    return image


def _normalize(image: Image.Image) -> Image.Image:
    """Upright pixels in RGB(A), with every piece of metadata dropped."""
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    clean = image.convert("RGBA" if has_alpha else "RGB")
    clean.info = {}
    return clean


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


class ImageStore:
    """A folder of images named by content hash, with one thumbnail each."""

    def __init__(
        self, root: str | Path, max_pixels: int = 40_000_000, max_side: int = MAX_SOURCE_SIDE
    ) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.max_side = max_side

    def save(self, data: bytes) -> StoredImage:
        image = _normalize(_decode(data, self.max_pixels, self.max_side))
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        encoded = _encode(image)
        content_hash = hashlib.sha256(encoded).hexdigest()
        thumbnail = image.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self._write(image_path(content_hash), encoded)
        self._write(image_path(content_hash, thumbnail=True), _encode(thumbnail))
        return StoredImage(content_hash, image.width, image.height)

    def stored_hashes(self) -> list[str]:
        """Hashes of the main files present (thumbnails follow their main file)."""
        return sorted(
            path.stem
            for path in self.root.glob("??/*.webp")
            if len(path.stem) == 64 and path.parent.name == path.stem[:2]
        )

    def age_seconds(self, content_hash: str) -> float:
        path = self.root / image_path(content_hash)
        try:
            return time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def delete(self, content_hash: str) -> None:
        for thumbnail in (False, True):
            (self.root / image_path(content_hash, thumbnail=thumbnail)).unlink(missing_ok=True)

    def _write(self, relative: str, data: bytes) -> None:
        target = self.root / relative
        if target.exists():  # same name, same content: refresh its age for the collector
            target.touch()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
