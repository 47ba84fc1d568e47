"""The offline product-card renderer: valid, deterministic, readable, labelled."""

from __future__ import annotations

import colorsys
import hashlib
import io
import os
import subprocess
import sys

import pytest
from PIL import Image, ImageFont, ImageStat

from shopai.ai import renderer
from shopai.ai.renderer import (
    CJK_FONT_PATH,
    LABEL,
    MIN_CONTRAST,
    RENDERER_NAME,
    card_palette,
    contrast_ratio,
    missing_glyphs,
    parse_size,
    render_product_card,
)

SMALL = (512, 512)
HEADPHONES = "Kestrel Audio K7 Wireless Noise-Cancelling Headphones"
LONG_200 = ("Lumen Hub Pro Smart Home Controller with Zigbee, Thread and Matter Support, " * 3)[
    :200
]


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _mean(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    r, g, b = ImageStat.Stat(image.convert("RGB").crop(box)).mean
    return r, g, b


def _require_cjk_font() -> None:
    if not os.path.isfile(CJK_FONT_PATH):
        pytest.fail(f"{CJK_FONT_PATH} is missing: `make test` installs Debian's fonts-wqy-microhei")


def _hue(color: tuple[float, float, float]) -> float:
    return colorsys.rgb_to_hls(*(c / 255 for c in color))[0]


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def test_renderer_name_is_the_provenance_model() -> None:
    assert RENDERER_NAME == "pillow-card-v1"


def test_returns_a_png_of_the_default_size() -> None:
    data = render_product_card(HEADPHONES, "Headphones")
    image = _open(data)
    assert image.format == "PNG"
    assert image.size == (1024, 1024)
    assert image.mode == "RGB"


@pytest.mark.parametrize("size", [(640, 480), (256, 2048), (2048, 256), (256, 256)])
def test_returns_a_png_of_the_requested_size(size: tuple[int, int]) -> None:
    assert _open(render_product_card(HEADPHONES, "Headphones", size=size)).size == size


def test_png_carries_no_metadata() -> None:
    data = render_product_card("Altura Book 14", "Laptops", size=SMALL)
    for chunk in (b"tIME", b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
        assert chunk not in data
    assert _open(data).info == {}


def test_same_inputs_give_identical_bytes() -> None:
    first = render_product_card(HEADPHONES, "Headphones", size=SMALL, seed=7)
    second = render_product_card(HEADPHONES, "Headphones", size=SMALL, seed=7)
    assert first == second


def test_output_does_not_depend_on_the_process_hash_seed() -> None:
    """Only hashlib decides anything: a fresh interpreter with another PYTHONHASHSEED
    draws the very same bytes."""
    code = (
        "import hashlib, sys; from shopai.ai.renderer import render_product_card as r; "
        "sys.stdout.write(hashlib.sha256(r('Altura Book 14', 'Laptops', size=(256, 256)))"
        ".hexdigest())"
    )
    here = hashlib.sha256(
        render_product_card("Altura Book 14", "Laptops", size=(256, 256))
    ).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout == here


def test_different_titles_give_different_images() -> None:
    a = render_product_card("Altura Book 14", "Laptops", size=SMALL)
    b = render_product_card("Altura Book 16", "Laptops", size=SMALL)
    assert a != b


def test_seed_varies_the_motif() -> None:
    a = render_product_card("Altura Book 14", "Laptops", size=SMALL, seed=1)
    b = render_product_card("Altura Book 14", "Laptops", size=SMALL, seed=2)
    assert a != b


def test_same_category_keeps_its_hue_family() -> None:
    corner = (0, 0, 48, 48)
    hues = [
        _hue(_mean(_open(render_product_card(title, "Laptops", size=SMALL)), corner))
        for title in ("Altura Book 14", "Zephyr Slim 13 Pro", "Orbit X1 Carbon", "Nimbus 15")
    ]
    for hue in hues[1:]:
        assert _hue_distance(hue, hues[0]) < 0.04
    other = _hue(
        _mean(_open(render_product_card("Altura Book 14", "Smart Home", size=SMALL)), corner)
    )
    assert _hue_distance(other, hues[0]) > 0.1


def test_category_colour_ignores_case_and_spacing() -> None:
    assert card_palette("Laptops") == card_palette("  laptops ")


def test_footer_band_carries_the_label() -> None:
    image = _open(render_product_card("Altura Book 14", "Laptops", size=SMALL)).convert("RGB")
    palette = card_palette("Laptops")
    width, height = image.size
    band_h = renderer._band_height(min(image.size))
    band = image.crop((0, height - band_h + 2, width, height))
    colours = band.getcolors(maxcolors=width * band_h)
    assert colours is not None
    # Mostly the band colour, which is not the card's background ...
    most = max(colours)[1]
    assert most == palette.band
    assert most != image.getpixel((width // 2, height - band_h - 10))
    # ... with text in the label colour across the middle, and nothing at the edges.
    label_pixels = [
        (x, y)
        for x in range(width)
        for y in range(band.height)
        if contrast_ratio(band.getpixel((x, y)), palette.band) > 3
    ]
    assert len(label_pixels) > 200
    xs = [x for x, _ in label_pixels]
    assert min(xs) > width * 0.15 and max(xs) < width * 0.85
    assert "not AI-generated" in LABEL


def test_renders_without_freetype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renderer, "_freetype_available", lambda: False)
    image = _open(render_product_card("Altura Book 14 Café", "Laptops", size=SMALL))
    assert image.size == SMALL
    assert missing_glyphs("Altura Book 14 Café") == ""  # folded to "Cafe"


@pytest.mark.parametrize(
    ("title", "category"),
    [
        (LONG_200, "Smart Home"),
        ("x" * 400, "Smart Home"),
        ("Наушники Сокол Про", "Наушники"),
        ("耳机 K7 无线降噪耳机", "耳机"),
        ("سماعات لاسلكية", "سماعات"),
        ("Café Noir — 1 kg 🎧", "Coffee & Tea"),
        ("Tab\tand\nnewline\x00title", "Misc\x07"),
        ("Short", ""),
    ],
)
def test_awkward_titles_render(title: str, category: str) -> None:
    image = _open(render_product_card(title, category, size=SMALL))
    assert image.size == SMALL
    assert isinstance(missing_glyphs(title), str)


def test_long_title_fits_four_lines_with_an_ellipsis() -> None:
    lines, face = renderer._fit_title(LONG_200, 840, 700, 1024)
    assert len(lines) == 4
    assert lines[-1].endswith(face.fold("…"))
    assert all(face.length(line) <= 840 for line in lines)


def test_title_wraps_at_word_boundaries() -> None:
    lines, _ = renderer._fit_title(HEADPHONES, 840, 700, 1024)
    assert 1 < len(lines) <= 4
    assert " ".join(lines).replace("- ", "-") == HEADPHONES


def test_short_title_uses_a_large_font() -> None:
    lines, face = renderer._fit_title("Altura Book 14", 840, 700, 1024)
    assert lines == ["Altura Book 14"]
    assert face.size >= 90


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024x1024", (1024, 1024)), ("256X2048", (256, 2048)), (" 512x768 ", (512, 768))],
)
def test_parse_size_accepts(text: str, expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "1024", "axb", "1024*1024", "1024x1024x3", "-256x256", "255x512", "512x2049", "4096x4096"],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)size|width|height"):
        parse_size(text)


def test_parse_size_explains_the_range() -> None:
    with pytest.raises(ValueError, match="between 256 and 2048"):
        parse_size("100x100")


def test_render_rejects_bad_sizes_and_empty_titles() -> None:
    with pytest.raises(ValueError, match="between 256 and 2048"):
        render_product_card("Altura Book 14", size=(100, 100))
    with pytest.raises(ValueError, match="title"):
        render_product_card("   ")


def test_contrast_helper() -> None:
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio((90, 90, 90), (90, 90, 90)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "category",
    ["Headphones", "Laptops", "Smart Home", "Coffee & Tea", "Garden", "Toys", "", "Наушники"],
)
def test_text_is_readable_on_every_background(category: str) -> None:
    palette = card_palette(category)
    for background in palette.backgrounds:
        assert contrast_ratio(palette.title, background) >= MIN_CONTRAST
        assert contrast_ratio(palette.accent, background) >= MIN_CONTRAST
    assert contrast_ratio(palette.label, palette.band) >= MIN_CONTRAST


def test_title_pixels_have_the_chosen_colour() -> None:
    image = _open(render_product_card("Altura Book 14", "Laptops", size=SMALL))
    palette = card_palette("Laptops")
    colours = {colour for _, colour in image.getcolors(maxcolors=SMALL[0] * SMALL[1]) or []}
    assert palette.title in colours


SONY = "索尼无线降噪耳机"


@pytest.mark.parametrize(
    "text", [SONY, "ソニー ワイヤレス", "소니 헤드폰", "Café Noir", "Наушники"]
)
def test_cjk_font_draws_real_glyphs(text: str) -> None:
    """Every character differs from the font's missing-glyph box, drawn for code points
    no font assigns (the last one of Unicode and a private-use one)."""
    _require_cjk_font()
    font = ImageFont.truetype(CJK_FONT_PATH, 32)

    def mask(ch: str) -> tuple[tuple[int, int], bytes]:
        m = font.getmask(ch)
        return m.size, bytes(m)

    boxes = {mask("\U0010ffff"), mask("\ue000")}
    for ch in text.replace(" ", ""):
        assert mask(ch) not in boxes, ch
    assert renderer._font_source_for(text) == CJK_FONT_PATH
    assert missing_glyphs(text) == ""


def test_chinese_card_shows_the_glyphs_not_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_cjk_font()
    card = _open(render_product_card(SONY, "耳机", size=SMALL))
    monkeypatch.setattr(renderer, "_installed_fallbacks", lambda: ())
    assert set(missing_glyphs(SONY)) == set(SONY)  # without the font: all boxes
    boxes = _open(render_product_card(SONY, "耳机", size=SMALL))
    band_h = renderer._band_height(min(SMALL))
    text_area = (0, 0, SMALL[0], SMALL[1] - band_h)
    assert card.crop(text_area).tobytes() != boxes.crop(text_area).tobytes()


def test_ascii_titles_keep_the_bundled_font() -> None:
    assert renderer._font_source_for("Altura Book 14 - 16 GB") == renderer._BUNDLED
    assert renderer._font_source_for("HEADPHONES") == renderer._BUNDLED
