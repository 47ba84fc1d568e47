"""An admin asks for a product's image and watches it arrive without a reload."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from PIL import Image
from playwright.sync_api import Page, expect

from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.images.generation import request_images
from shopai.jobs import JobRuntime, jobs_runtime

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, make_category, make_product
from ..fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.browser

# Bounds for state changes that go through a real consumer; not durations under test.
CHANGE = 20_000
MEDIA = re.compile(r"^/media/[0-9a-f]{2}/[0-9a-f]{64}\.webp$")


def png(color: tuple[int, int, int], size: tuple[int, int] = (96, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def app_config(app_config: dict, fake_ai: FakeOpenAI) -> dict:
    """The shop's images come from the fake OpenAI server (text stays on the embedded model)."""
    settings = AISettings.from_env(
        {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": fake_ai.base_url,
            "SHOPAI_AI_BACKEND": "local",
            "SHOPAI_IMAGE_BACKEND": "api",
            "SHOPAI_EMBEDDING_BACKEND": "local",
            "SHOPAI_ALLOW_PRIVATE_IMAGE_URLS": "true",
            "SHOPAI_IMAGES_RETRIES": "0",
            "SHOPAI_IMAGES_TIMEOUT": "20",
        }
    )
    # No model-made search suggestions: they would keep the consumer busy with the
    # embedded text model, which this test does not need.
    return {**app_config, "SHOPAI_AI": settings, "SHOPAI_SUGGEST_FROM_MODEL": False}


@pytest.fixture
def jobs(app: Flask, admin) -> Iterator[JobRuntime]:
    """A job consumer beside the live server, as `flask run` would have (tests set none)."""
    runtime = jobs_runtime(app)
    runtime.start_consumer(threads=2)
    yield runtime
    runtime.close()
    flush_usage()
    ai_client().close()


def sign_in(page: Page, path: str) -> None:
    page.goto(path)
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_admin_watches_a_generated_image_appear(
    page: Page, live_server: str, jobs: JobRuntime, fake_ai: FakeOpenAI
):
    make_product("Kestrel K7 Wireless Headphones", "199.00", make_category("Headphones"))
    fake_ai.delay_next(6, kind="images")  # long enough for two pages to see it being drawn
    fake_ai.reply_image_b64(png((30, 120, 200)))

    sign_in(page, "/product-create")
    expect(page.get_by_role("heading", name="New product")).to_be_visible()
    # Keyboard only: type, Tab from field to field, Space to tick, Enter to submit.
    page.get_by_label("Name").focus()
    page.keyboard.type("Heron H2 Earbuds")
    page.keyboard.press("Tab")
    page.keyboard.type("59.50")
    page.get_by_label("Category").select_option(label="Headphones")
    box = page.get_by_role("checkbox", name="Generate one with the model")
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Prompt")).to_be_focused()
    page.keyboard.type("Heron H2 earbuds in their case, studio light")
    page.keyboard.press("Tab")
    expect(page.get_by_label("How many to draw")).to_be_focused()
    expect(page.get_by_label("How many to draw")).to_have_value("1")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create product")).to_be_focused()
    page.keyboard.press("Enter")

    # Saved at once: the product page shows the placeholder while the model draws.
    expect(page.get_by_role("heading", level=1)).to_have_text("Heron H2 Earbuds")
    image = page.locator(".product-image")
    expect(image).to_have_attribute("src", re.compile(r"placeholder"))
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    live = page.locator("[data-image-live]")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_have_text(re.compile(r"^The image is (waiting to be|being) drawn…$"))
    expect(live).to_have_text("The image is being drawn…", timeout=CHANGE)
    badge = page.get_by_text("AI-generated", exact=True)
    expect(badge).to_be_hidden()

    # A shopper on the same page (anonymous: cached, the same for everyone) sees it too.
    assert page.context.browser is not None
    shopper_context = page.context.browser.new_context(base_url=live_server)
    shopper = shopper_context.new_page()
    errors: list[str] = []
    shopper.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    shopper.goto(page.url)
    expect(shopper.get_by_role("link", name="Sign in")).to_be_visible()
    shopper_image = shopper.locator(".product-image")
    expect(shopper_image).to_have_attribute("src", re.compile(r"placeholder"))
    expect(shopper.locator("[data-image-live]")).to_have_text("The image is being drawn…")

    # The job ends: the image is swapped in, with its badge, on the same page.
    expect(image).to_have_attribute("src", MEDIA, timeout=CHANGE)
    expect(image).to_have_attribute("alt", "Heron H2 Earbuds")
    expect(badge).to_be_visible()
    expect(live).to_have_text("The image is ready.")
    expect(page.get_by_text("Illustration, not a photo")).to_be_hidden()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 96
    assert page.evaluate("() => window.sameDocument") is True
    expect(shopper_image).to_have_attribute("src", MEDIA, timeout=CHANGE)
    expect(shopper.get_by_text("AI-generated", exact=True)).to_be_visible()
    shopper_context.close()
    assert errors == []
    assert fake_ai.requests_to("/images/generations")[0].body["prompt"] == (
        "Heron H2 earbuds in their case, studio light"
    )

    # The admin list shows each product's image state.
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Products").click()
    expect(page.get_by_role("columnheader", name="Image")).to_be_visible()
    earbuds = page.get_by_role("row").filter(has_text="Heron H2 Earbuds")
    expect(earbuds.locator("[data-image-status]")).to_have_text("Ready")
    headphones = page.get_by_role("row").filter(has_text="Kestrel K7")
    expect(headphones.locator("[data-image-status]")).to_have_text("Not requested")

    # The candidate is listed with its provenance, and marked as the one in use.
    earbuds.get_by_role("link", name="Heron H2 Earbuds", exact=True).click()
    page.get_by_role("link", name="Generated images…").click()
    card = page.get_by_role("article", name=re.compile("Candidate 1"))
    expect(card).to_contain_text("In use")
    expect(card).to_contain_text("gpt-image-1-mini")
    expect(card).to_contain_text("Heron H2 earbuds in their case, studio light")
    expect(card).to_contain_text("96\N{MULTIPLICATION SIGN}96")
    expect(card.get_by_role("button", name=re.compile("Use this image"))).to_have_count(0)


def test_the_admin_list_follows_a_request_live(page: Page, jobs: JobRuntime, fake_ai: FakeOpenAI):
    product = make_product("Kestrel K7 Wireless Headphones", "199.00", make_category("Headphones"))
    sign_in(page, "/admin/products")
    row = page.get_by_role("row").filter(has_text="Kestrel K7")
    status = row.locator("[data-image-status]")
    expect(status).to_have_text("Not requested")

    # Asked for on the product's images page, in another tab of the same admin.
    fake_ai.delay_next(5, kind="images")
    fake_ai.reply_image_b64(png((200, 40, 40)))
    other = page.context.new_page()
    errors: list[str] = []
    other.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    other.goto(f"/admin/products/{product.id}/images")
    other.get_by_label("Images", exact=True).fill("1")
    other.get_by_role("button", name="Generate").click()
    expect(other.locator("[data-image-live]")).to_have_text(
        re.compile(r"^The image is (waiting to be|being) drawn…$")
    )
    expect(other.get_by_role("link", name="Show the new images")).to_be_hidden()

    # The list, loaded before the request, learns of it when reloaded; then it follows
    # the job by itself.
    page.reload()
    status = page.get_by_role("row").filter(has_text="Kestrel K7").locator("[data-image-status]")
    expect(status).to_have_text(re.compile("^(Queued|Drawing)$"))
    page.evaluate("() => { window.sameDocument = true; }")
    expect(status).to_have_text("Ready", timeout=CHANGE)
    assert page.evaluate("() => window.sameDocument") is True

    # The images page that asked shows the news and a way to see the new candidates.
    expect(other.locator("[data-image-live]")).to_have_text("The image is ready.", timeout=CHANGE)
    other.get_by_role("link", name="Show the new images").click()
    expect(other.get_by_role("article", name=re.compile("Candidate 1"))).to_contain_text("In use")
    other.close()
    assert errors == []


def test_a_failed_drawing_is_told_to_admins_only(
    page: Page, live_server: str, jobs: JobRuntime, fake_ai: FakeOpenAI
):
    product = make_product("Kestrel K7 Wireless Headphones", "199.00", make_category("Headphones"))
    fake_ai.delay_next(4, kind="images")
    fake_ai.reply_error(400, message="The prompt was refused.", kind="images")  # no retry
    request_images(product)

    sign_in(page, f"/login?next=/product/{product.slug}")
    live = page.locator("[data-image-live]")
    expect(live).to_have_text(re.compile(r"^The image is (waiting to be|being) drawn…$"))
    assert page.context.browser is not None
    shopper_context = page.context.browser.new_context(base_url=live_server)
    shopper = shopper_context.new_page()
    shopper.goto(f"/product/{product.slug}")
    expect(shopper.locator("[data-image-live]")).to_have_text(
        re.compile(r"^The image is (waiting to be|being) drawn…$")
    )

    expect(live).to_have_text("The image could not be drawn.", timeout=CHANGE)
    expect(page.locator(".product-image")).to_have_attribute("src", re.compile("placeholder"))
    expect(shopper.locator("[data-image-live]")).to_have_text("", timeout=CHANGE)
    expect(shopper.locator(".product-image")).to_have_attribute("src", re.compile("placeholder"))
    shopper_context.close()

    page.goto("/admin/products")
    row = page.get_by_role("row").filter(has_text="Kestrel K7")
    expect(row.locator("[data-image-status]")).to_have_text("Failed")
