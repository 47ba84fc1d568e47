"""The offline image "generator": a deterministic product card drawn with Pillow.

Used when no image-generation API is configured. It draws a calm two-tone card
from a product name and category and marks it "Illustration · not AI-generated",
so nobody mistakes it for a photo or a model's output.

The same inputs give byte-identical PNG bytes on the same machine: every choice
of colour or shape comes from a SHA-256 of the inputs, and the PNG carries no
metadata. (Different Pillow, FreeType or font installations can draw glyphs
differently, so bytes are not promised to match across machines.)

Fonts: Pillow's bundled Aileron Regular (``ImageFont.load_default(size=...)``)
is used whenever it covers the text; it only covers printable ASCII and a few
symbols. Other text (Chinese, Japanese, Korean, accented Latin, Cyrillic ...) uses
Debian's WenQuanYi Micro Hei (``CJK_FONT_PATH``, package fonts-wqy-microhei, which
``make run`` and ``make test`` install), then DejaVu Sans for Arabic and Hebrew.
Without either, accents are folded ("é" -> "e") and any glyph still missing shows
as the font's placeholder box. Without FreeType at all the built-in bitmap font is
scaled up: blocky but legible.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

RENDERER_NAME = "pillow-card-v1"  # recorded as the 'model' in provenance
LABEL = "Illustration · not AI-generated"
MIN_SIDE = 256
MAX_SIDE = 2048
MAX_TITLE_LINES = 4
MIN_CONTRAST = 4.5  # WCAG AA for normal text

# Tried in order when Pillow's bundled font lacks a glyph the text needs (Debian paths).
# WenQuanYi Micro Hei (fonts-wqy-microhei, installed by `make run` and `make test`)
# draws CJK, Latin, Greek and Cyrillic; DejaVu Sans (fonts-dejavu-core, which
# fontconfig pulls in) adds Arabic and Hebrew.
CJK_FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
FALLBACK_FONT_PATHS: tuple[str, ...] = (
    CJK_FONT_PATH,
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)

_BUNDLED = "<pillow-bundled>"
_MAX_TITLE_CHARS = 400  # anything longer cannot fit in four lines at any allowed size
_MAX_SUBTITLE_CHARS = 120
_ASCII_FOLDS = {
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u00d7": "x",
    "\u00a0": " ",
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u00b7": "-",
}

RGB = tuple[int, int, int]


# --------------------------------------------------------------------------- public API


def parse_size(size: str) -> tuple[int, int]:
    """Parse "1024x1024" into (1024, 1024); each side must be 256..2048 pixels."""
    text = str(size).strip().lower().replace("\u00d7", "x")
    parts = text.split("x")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdecimal() for p in parts):
        raise ValueError(f"image size must look like 1024x1024, not {size!r}")
    width, height = (int(p) for p in parts)
    _check_size((width, height))
    return width, height


def render_product_card(
    title: str,
    subtitle: str = "",
    *,
    size: tuple[int, int] = (1024, 1024),
    seed: int | None = None,
) -> bytes:
    """PNG bytes. Same inputs -> byte-identical output (no timestamps, no randomness
    except from a stable hash of title/subtitle/seed)."""
    width, height = _check_size(size)
    title = _clean(title, _MAX_TITLE_CHARS)
    subtitle = _clean(subtitle, _MAX_SUBTITLE_CHARS)
    if not title:
        raise ValueError("a product card needs a non-empty title")

    palette = card_palette(subtitle)
    stream = _HashStream(f"card\x1f{title}\x1f{subtitle}\x1f{'' if seed is None else seed}")
    image = _background(width, height, palette)
    _draw_motif(image, palette, stream)
    _draw_text_block(image, palette, title, subtitle)
    _draw_footer(image, palette)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


# --------------------------------------------------------------------------- colour


def relative_luminance(color: Sequence[int]) -> float:
    """WCAG 2 relative luminance of an sRGB colour given as 0..255 channels."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in color[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Sequence[int], b: Sequence[int]) -> float:
    """WCAG 2 contrast ratio, 1.0 (same) to 21.0 (black on white)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


@dataclass(frozen=True)
class CardPalette:
    """Every colour on a card; derived from the category alone."""

    hue: float  # 0..1
    top: RGB  # gradient start (top edge)
    bottom: RGB  # gradient end (bottom edge)
    shapes: tuple[RGB, ...]  # the soft motif shapes
    ring: RGB  # the thin outline ring in the motif
    title: RGB  # title text
    accent: RGB  # category text and the short rule under it
    band: RGB  # footer band
    label: RGB  # footer label text

    @property
    def backgrounds(self) -> tuple[RGB, ...]:
        """Every colour the title can be drawn over."""
        return (self.top, self.bottom, *self.shapes, self.ring)


def card_palette(subtitle: str = "") -> CardPalette:
    """The colours for a category: a pastel hue family picked by a stable hash."""
    key = _clean(subtitle, _MAX_SUBTITLE_CHARS).casefold()
    digest = hashlib.sha256(f"hue\x1f{key}".encode()).digest()
    hue = int.from_bytes(digest[:4], "big") / 2**32
    sat = 0.34 + 0.16 * digest[4] / 255  # 0.34..0.50: calm, never neon
    drift = (digest[5] / 255 - 0.5) * 0.06  # the gradient's second hue is a close neighbour

    top = _hls(hue, 0.935, sat)
    bottom = _hls(hue + drift, 0.855, sat * 0.9)
    shapes = (
        _hls(hue, 0.965, sat * 0.8),  # lighter than the background
        _hls(hue + drift, 0.82, sat * 0.85),  # a touch deeper
        _hls(hue - drift, 0.90, sat),
    )
    ring = _hls(hue, 0.76, sat * 0.7)
    band = _hls(hue, 0.975, sat * 0.6)
    backgrounds = (top, bottom, *shapes, ring)

    title = _readable((hue, 0.17, 0.45), backgrounds)
    accent = _readable((hue, 0.34, 0.55), backgrounds)
    label = _readable((hue, 0.30, 0.25), (band,))
    return CardPalette(hue, top, bottom, shapes, ring, title, accent, band, label)


def _hls(h: float, lightness: float, saturation: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, lightness, min(max(saturation, 0.0), 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def _readable(hls: tuple[float, float, float], backgrounds: Iterable[RGB]) -> RGB:
    """The preferred tinted ink, darkened or lightened until it reaches MIN_CONTRAST
    against every background; black or white if no tint does."""
    backgrounds = tuple(backgrounds)
    h, lightness, s = hls
    mean_lum = sum(relative_luminance(b) for b in backgrounds) / len(backgrounds)
    step = -0.02 if mean_lum > 0.18 else 0.02  # light backgrounds want dark text
    while 0.0 <= lightness <= 1.0:
        color = _hls(h, lightness, s)
        if min(contrast_ratio(color, b) for b in backgrounds) >= MIN_CONTRAST:
            return color
        lightness += step
    black, white = (0, 0, 0), (255, 255, 255)
    worst_black = min(contrast_ratio(black, b) for b in backgrounds)
    worst_white = min(contrast_ratio(white, b) for b in backgrounds)
    return black if worst_black >= worst_white else white


class _HashStream:
    """Deterministic floats in [0, 1) from SHA-256(key, counter)."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        self._counter = 0

    def next(self) -> float:
        data = self._key + b"\x1f" + self._counter.to_bytes(8, "big")
        self._counter += 1
        return int.from_bytes(hashlib.sha256(data).digest()[:7], "big") / 2**56

    def between(self, low: float, high: float) -> float:
        return low + (high - low) * self.next()


# --------------------------------------------------------------------------- drawing


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (width, height) pair, not {size!r}") from None
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(
                f"image {name} must be between {MIN_SIDE} and {MAX_SIDE} pixels, not {value}"
            )
    return width, height


def _clean(text: str, limit: int) -> str:
    """NFC, no control characters, whitespace collapsed; over-long text ends in '…'."""
    text = unicodedata.normalize("NFC", str(text or ""))
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _filled_ellipse(box: tuple[float, float, float, float], draw: ImageDraw.ImageDraw) -> None:
    draw.ellipse(box, fill=200)


def _scale(image: Image.Image) -> int:
    return min(image.size)


def _background(width: int, height: int, palette: CardPalette) -> Image.Image:
    top = Image.new("RGB", (width, height), palette.top)
    bottom = Image.new("RGB", (width, height), palette.bottom)
    mask = Image.linear_gradient("L").resize((width, height), Image.Resampling.BICUBIC)
    return Image.composite(bottom, top, mask)


def _draw_motif(image: Image.Image, palette: CardPalette, stream: _HashStream) -> None:
    """Three large soft circles hugging the edges plus one thin ring. Each is drawn as a
    mask at a quarter of the size, blurred a little and scaled up (anti-aliased, soft
    edges), then used to paint its flat colour."""
    width, height = image.size
    factor = 4
    small = (max(1, width // factor), max(1, height // factor))
    s = min(small)
    blur = ImageFilter.GaussianBlur(max(1.0, s * 0.005))

    def paint(color: RGB, shape: Callable[[ImageDraw.ImageDraw], None]) -> None:
        mask = Image.new("L", small, 0)
        shape(ImageDraw.Draw(mask))
        mask = mask.filter(blur).resize(image.size, Image.Resampling.BICUBIC)
        image.paste(color, (0, 0, width, height), mask)

    # Corners, in an order picked by the hash, so the circles never crowd the centre.
    corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    start = int(stream.next() * 4)
    corners = corners[start:] + corners[:start]
    for (cx, cy), color in zip(corners[:3], palette.shapes, strict=True):
        radius = stream.between(0.28, 0.46) * s
        x = cx * small[0] + (0.5 - cx) * stream.between(0.0, 0.35) * small[0]
        y = cy * small[1] + (0.5 - cy) * stream.between(0.0, 0.30) * small[1]
        paint(
            color,
            functools.partial(_filled_ellipse, (x - radius, y - radius, x + radius, y + radius)),
        )

    cx, cy = corners[3]
    radius = stream.between(0.20, 0.30) * s
    x = cx * small[0] + (0.5 - cx) * stream.between(0.10, 0.25) * small[0]
    y = cy * small[1] + (0.5 - cy) * stream.between(0.10, 0.25) * small[1]
    box = (x - radius, y - radius, x + radius, y + radius)
    ring_w = max(1, round(s * 0.006))
    paint(palette.ring, lambda d: d.ellipse(box, outline=150, width=ring_w))


def _draw_text_block(image: Image.Image, palette: CardPalette, title: str, subtitle: str) -> None:
    width, height = image.size
    s = _scale(image)
    draw = ImageDraw.Draw(image)
    margin_x = round(max(width * 0.09, s * 0.07))
    band_h = _band_height(s)
    top_limit = round(s * 0.07)
    bottom_limit = height - band_h - round(s * 0.05)
    max_w = width - 2 * margin_x

    cat_face = None
    cat_text = ""
    cat_h = gap = rule_h = 0
    if subtitle:
        cat_size = max(12, round(s * 0.03))
        cat_face = _face(subtitle.upper(), cat_size)
        tracking = round(cat_size * 0.16)
        cat_text = _fit_one_line(cat_face, cat_face.fold(subtitle.upper()), max_w, tracking)
        cat_h = cat_face.ascent + cat_face.descent
        rule_h = max(2, round(s * 0.004))
        gap = round(s * 0.028)

    avail_h = bottom_limit - top_limit - (cat_h + 2 * gap + rule_h if subtitle else 0)
    lines, face = _fit_title(title, max_w, max(avail_h, 1), s)
    line_h = round(face.size * 1.16)
    title_h = line_h * (len(lines) - 1) + face.ascent + face.descent

    block_h = title_h + (cat_h + 2 * gap + rule_h if subtitle else 0)
    # Optical centre: a little above the middle of the free area.
    y = top_limit + max(0, round((bottom_limit - top_limit - block_h) * 0.45))
    cx = width // 2

    if cat_face is not None:
        cat_face.draw(draw, image, cx, y + cat_face.ascent, cat_text, palette.accent, tracking)
        y += cat_h + gap
        rule_w = round(s * 0.06)
        draw.rectangle((cx - rule_w // 2, y, cx + rule_w // 2 - 1, y + rule_h - 1), palette.accent)
        y += rule_h + gap

    stroke = max(0, round(face.size * 0.018)) if face.scalable else 0
    baseline = y + face.ascent
    for line in lines:
        face.draw(draw, image, cx, baseline, line, palette.title, 0, stroke)
        baseline += line_h


def _band_height(s: int) -> int:
    return max(26, round(s * 0.072))


def _draw_footer(image: Image.Image, palette: CardPalette) -> None:
    width, height = image.size
    s = _scale(image)
    band_h = _band_height(s)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - band_h, width - 1, height - 1), fill=palette.band)
    draw.rectangle((0, height - band_h, width - 1, height - band_h), fill=palette.ring)

    size = max(11, round(s * 0.024))
    face = _face(LABEL, size)
    text = face.fold(LABEL)
    max_w = width - 2 * round(s * 0.04)
    while face.length(text) > max_w and size > 8:
        size -= 1
        face = _face(LABEL, size)
    center_y = height - band_h / 2
    baseline = round(center_y + (face.cap_height / 2))
    face.draw(draw, image, width // 2, baseline, text, palette.label, round(size * 0.04))


# --------------------------------------------------------------------------- text layout


def _fit_title(title: str, max_w: int, max_h: int, s: int) -> tuple[list[str], _Face]:
    """The largest font size (between 4% and 9.5% of the short side) at which the title
    wraps onto at most four lines inside max_w x max_h without splitting a word;
    otherwise the smallest size, splitting over-long words and cutting the last line
    with an ellipsis if it must."""
    largest = max(16, round(s * 0.095))
    smallest = max(14, round(s * 0.04))
    size = largest
    while True:
        face = _face(title, size)
        text = face.fold(title)
        line_h = round(size * 1.16)
        max_lines = max(1, min(MAX_TITLE_LINES, 1 + (max_h - face.ascent - face.descent) // line_h))
        for hyphens in (False, True):  # break after a hyphen only when spaces won't do
            lines, cut, split = _wrap(face, text, max_w, max_lines, hyphens)
            if not cut and not split:
                break
        if (not cut and not split) or size <= smallest:
            break
        size = max(smallest, min(size - 1, round(size * 0.94)))
    if not cut and len(lines) > 1:
        lines = _balance(face, text, max_w, len(lines), split, hyphens)
    return lines, face


def _pieces(text: str, hyphens: bool) -> list[tuple[str, str]]:
    """(glue, piece) pairs: words, further split after an inner hyphen or slash if
    hyphens is true; such pieces are joined back without a space."""
    out: list[tuple[str, str]] = []
    for word in text.split(" "):
        parts = re.split(r"(?<=[-/\u2010])(?=\w)", word) if hyphens else [word]
        for i, piece in enumerate(parts):
            out.append(("" if i else " ", piece))
    return out


def _wrap(
    face: _Face, text: str, max_w: int, max_lines: int, hyphens: bool = True
) -> tuple[list[str], bool, bool]:
    """Greedy wrap at spaces and after hyphens; a piece wider than a line breaks
    anywhere. Returns the lines, whether text had to be cut (the last line then ends
    in '…'), and whether a word of an alphabetic script had to be split."""
    lines: list[str] = []
    current = ""
    split = False
    for glue, piece in _pieces(text, hyphens):
        candidate = current + glue + piece if current else piece
        if face.length(candidate) <= max_w:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        if face.length(piece) <= max_w:
            current = piece
            continue
        for ch in piece:
            if current and face.length(current + ch) > max_w:
                split = split or not (_is_wide(current[-1]) or _is_wide(ch))
                lines.append(current)
                current = ch
            else:
                current += ch
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines, False, split
    kept = lines[:max_lines]
    kept[-1] = _ellipsize(face, kept[-1], max_w)
    return kept, True, split


def _is_wide(ch: str) -> bool:
    """CJK and other wide characters may break a line anywhere."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _balance(
    face: _Face, text: str, max_w: int, n_lines: int, split: bool, hyphens: bool
) -> list[str]:
    """Narrow the measure as far as possible without adding a line (or a split word),
    so a wrapped title has even lines instead of one long line over a lonely last word."""
    best, _, _ = _wrap(face, text, max_w, n_lines, hyphens)
    low, high = max_w // 2, max_w
    while high - low > 4:
        mid = (low + high) // 2
        lines, cut, mid_split = _wrap(face, text, mid, n_lines, hyphens)
        if cut or (mid_split and not split):
            low = mid
        else:
            best, high = lines, mid
    return best


def _ellipsize(face: _Face, line: str, max_w: int) -> str:
    ellipsis = face.fold("…")
    line = line.rstrip(" ,;:-")
    while line and face.length(line + ellipsis) > max_w:
        line = line[:-1].rstrip(" ,;:-")
    return line + ellipsis


def _fit_one_line(face: _Face, text: str, max_w: int, tracking: int) -> str:
    if face.tracked_length(text, tracking) <= max_w:
        return text
    ellipsis = face.fold("…")
    while text and face.tracked_length(text + ellipsis, tracking) > max_w:
        text = text[:-1].rstrip()
    return text + ellipsis


# --------------------------------------------------------------------------- fonts


class _Face:
    """One font at one size: FreeType when available, else the scaled bitmap font."""

    def __init__(self, source: str, size: int) -> None:
        self.source = source
        self.size = size
        self.scalable = source != "<bitmap>"
        if self.scalable:
            self.font: ImageFont.FreeTypeFont | ImageFont.ImageFont = _load_font(source, size)
            ascent, descent = self.font.getmetrics()
            self.factor = 1
        else:
            self.font = ImageFont.load_default_imagefont()
            _, top, _, bottom = self.font.getbbox("Hg")
            self.factor = max(1, round(size / max(1, bottom - top)))
            ascent, descent = (bottom - top) * self.factor, 0
        self.ascent, self.descent = ascent, descent
        _, cap_top, _, cap_bottom = self.font.getbbox("H")
        self.cap_height = (cap_bottom - cap_top) * self.factor

    def fold(self, text: str) -> str:
        """Replace characters this font cannot draw by close equivalents where possible."""
        if not self.scalable:
            return _fold(text, lambda ch: ch.isascii() and ch.isprintable())
        return _fold(text, lambda ch: _covers(self.source, ch))

    def length(self, text: str) -> float:
        return self.font.getlength(text) * self.factor

    def tracked_length(self, text: str, tracking: int) -> float:
        if not tracking or not _trackable(text):
            return self.length(text)
        return sum(self.length(ch) for ch in text) + tracking * max(0, len(text) - 1)

    def draw(
        self,
        draw: ImageDraw.ImageDraw,
        image: Image.Image,
        center_x: int,
        baseline: int,
        text: str,
        fill: RGB,
        tracking: int = 0,
        stroke: int = 0,
    ) -> None:
        """Draw text horizontally centred on center_x with its baseline at baseline."""
        if not self.scalable:
            self._draw_bitmap(image, center_x, baseline, text, fill)
            return
        if tracking and _trackable(text):
            x = center_x - self.tracked_length(text, tracking) / 2
            for ch in text:
                draw.text((x, baseline), ch, fill=fill, font=self.font, anchor="ls")
                x += self.length(ch) + tracking
            return
        draw.text(
            (center_x, baseline),
            text,
            fill=fill,
            font=self.font,
            anchor="ms",
            stroke_width=stroke,
            stroke_fill=fill if stroke else None,
        )

    def _draw_bitmap(
        self, image: Image.Image, center_x: int, baseline: int, text: str, fill: RGB
    ) -> None:
        left, top, right, bottom = self.font.getbbox(text)
        if right <= left or bottom <= top:
            return
        mask = Image.new("L", (int(right - left), int(bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=self.font)
        mask = mask.resize(
            (mask.width * self.factor, mask.height * self.factor), Image.Resampling.NEAREST
        )
        x = round(center_x - mask.width / 2)
        y = baseline - self.ascent
        image.paste(Image.new("RGB", mask.size, fill), (x, y), mask)


def _trackable(text: str) -> bool:
    """Letter-spacing glyph by glyph is only safe for scripts without shaping: Latin,
    Greek, Cyrillic and general punctuation such as the ellipsis."""
    return all(ord(ch) < 0x0530 or 0x2000 <= ord(ch) < 0x2070 for ch in text)


def _fold(text: str, covered: Callable[[str], bool]) -> str:
    out = []
    for ch in text:
        if ch == " " or covered(ch):
            out.append(ch)
            continue
        replacement = _ASCII_FOLDS.get(ch)
        if replacement is None:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            replacement = base if base and base != ch else None
        if replacement is not None and all(covered(c) for c in replacement):
            out.append(replacement)
        else:
            out.append(ch)  # drawn as the font's "missing glyph" box
    return "".join(out)


def _face(text: str, size: int) -> _Face:
    return _Face(_font_source_for(text), size)


@functools.lru_cache(maxsize=1)
def _freetype_available() -> bool:
    return bool(features.check_module("freetype2"))


@functools.lru_cache(maxsize=1)
def _bundled_font_bytes() -> bytes | None:
    if not _freetype_available():
        return None
    try:
        font = ImageFont.load_default(size=12)
    except (OSError, ValueError):
        return None
    return getattr(font, "font_bytes", None) if isinstance(font, ImageFont.FreeTypeFont) else None


@functools.lru_cache(maxsize=1)
def _installed_fallbacks() -> tuple[str, ...]:
    found = []
    for path in FALLBACK_FONT_PATHS:
        if not os.path.isfile(path):
            continue
        try:
            ImageFont.truetype(path, 12)
        except OSError:
            continue
        found.append(path)
    return tuple(found)


def _load_font(source: str, size: int) -> ImageFont.FreeTypeFont:
    # A new font object per call: FreeType faces are not safe to share across threads.
    if source == _BUNDLED:
        data = _bundled_font_bytes()
        assert data is not None  # only chosen when the bytes exist
        return ImageFont.truetype(io.BytesIO(data), size)
    return ImageFont.truetype(source, size)


@functools.lru_cache(maxsize=64)
def _notdef_mask(source: str) -> tuple[tuple[int, int], bytes]:
    return _glyph_mask(source, "\U0010fffd")  # private use: in no real font


@functools.lru_cache(maxsize=8192)
def _covers(source: str, ch: str) -> bool:
    """Whether the font draws ch as a real glyph rather than its .notdef box."""
    category = unicodedata.category(ch)
    if category.startswith("Z") or category in ("Cf", "Mn", "Me"):
        return True
    return _glyph_mask(source, ch) != _notdef_mask(source)


def _glyph_mask(source: str, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = _load_font(source, 32).getmask(ch)
    return mask.size, bytes(mask)


def _font_source_for(text: str) -> str:
    """The bundled font if it draws every character, else the first installed fallback
    that does; else whichever misses fewest characters after folding accents."""
    if not _freetype_available() or _bundled_font_bytes() is None:
        return "<bitmap>"
    chars = sorted({ch for ch in text if ch != " "})
    if all(_covers(_BUNDLED, ch) for ch in chars):
        return _BUNDLED
    fallbacks = _installed_fallbacks()
    for path in fallbacks:
        if all(_covers(path, ch) for ch in chars):
            return path

    def missing(source: str) -> int:
        folded = _fold("".join(chars), lambda ch: _covers(source, ch))
        return sum(1 for ch in folded if not _covers(source, ch))

    return min((_BUNDLED, *fallbacks), key=missing)  # min() keeps the first on ties


def missing_glyphs(text: str) -> str:
    """Characters of text that will show as placeholder boxes on this machine."""
    text = _clean(text, _MAX_TITLE_CHARS)
    face = _face(text, 32)
    folded = face.fold(text)
    if not face.scalable:
        return "".join(sorted({ch for ch in folded if not (ch.isascii() and ch.isprintable())}))
    return "".join(sorted({ch for ch in folded if not _covers(face.source, ch)}))
