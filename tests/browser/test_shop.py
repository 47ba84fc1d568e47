"""A shopper browses; an admin signs in and adds a product with a photo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shopai.demo import load_demo_catalog

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, image_bytes

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_shop(app, admin):
    load_demo_catalog()


def test_shopper_browses_and_searches(page: Page, demo_shop):
    page.goto("/")
    expect(page.get_by_role("heading", name="Featured")).to_be_visible()
    page.get_by_role("link", name="Headphones", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Headphones")
    page.locator(".product-card a").first.click()
    expect(page.locator(".price")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))

    page.get_by_label("Search products").first.fill("wireless")
    page.get_by_label("Search products").first.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("found")
    page.get_by_label("Max price").fill("200")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"max_price=200"))
    expect(page.get_by_role("status")).to_contain_text("found")
    page.get_by_role("link", name="Next").click()  # more than one page of wireless under $200
    expect(page).to_have_url(re.compile(r"q=wireless.*max_price=200.*page=2"))
    expect(page.get_by_label("Max price")).to_have_value("200")


def test_keyboard_users_can_skip_to_content(page: Page, demo_shop):
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()


def test_admin_creates_category_and_product_with_image(page: Page, demo_shop, tmp_path: Path):
    photo = tmp_path / "speaker.png"
    photo.write_bytes(image_bytes(size=(640, 480), color=(20, 120, 200)))

    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Admin")).to_be_visible()

    page.get_by_role("link", name="New category").click()
    page.get_by_label("Name").fill("Turntables & <Vinyl>")
    page.get_by_role("button", name="Create category").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Turntables & <Vinyl>"))

    page.goto("/product-create")
    page.get_by_label("Name").fill("Fennick Spin 2 Belt-Drive Turntable")
    page.get_by_label("Price").fill("349.50")
    page.get_by_label("Category").select_option(label="Turntables & <Vinyl>")
    page.get_by_label("Description").fill("Two speeds, a built-in phono stage and Bluetooth out.")
    page.get_by_label("Image").set_input_files(str(photo))
    page.get_by_role("button", name="Create product").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Fennick Spin 2 Belt-Drive Turntable")
    expect(page.locator(".price")).to_have_text("$349.50")
    image = page.locator(".product-image")
    expect(image).to_have_attribute("alt", "Fennick Spin 2 Belt-Drive Turntable")
    expect(image).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{2}/[0-9a-f]{64}\.webp$"))
    assert image.evaluate("img => img.complete && img.naturalWidth") == 640

    page.get_by_label("Search products").first.fill("fennick spin")
    page.get_by_label("Search products").first.press("Enter")
    expect(page.locator(".product-card")).to_have_count(1)
