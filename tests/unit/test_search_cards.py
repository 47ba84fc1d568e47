"""The search page reads product cards as rows: the same products, shown the same way."""

from __future__ import annotations

import re

import pytest

from shopai.images.services import attach_image, store_image
from shopai.page_cache import EXTENSION_KEY
from shopai.search import forms
from shopai.search.cards import ProductCard
from shopai.search.services import SearchFilters, search_products

from ..factories import execute_elsewhere, image_bytes, make_category, make_product


@pytest.fixture
def shop(app):
    audio = make_category("Headphones")
    shown = make_product("Kestrel K7 Wireless Headphones", "199.00", audio, "Noise cancelling.")
    attach_image(shown, store_image(image_bytes(color=(10, 20, 30))))
    later = attach_image(shown, store_image(image_bytes(color=(40, 50, 60))))  # the one shown
    candidate = make_product("Kestrel Buds Mini", "59.00", audio, "Tiny wireless earbuds.")
    attach_image(candidate, store_image(image_bytes(color=(70, 80, 90))), chosen=False)
    make_product("Altura Book Pro 16", "1899.00", make_category("Laptops"), "Wireless dock.")
    from shopai.extensions import db

    db.session.commit()
    return {"audio": audio, "image": later}


def test_cards_hold_what_the_products_show(shop):
    filters = SearchFilters(q="wireless")
    products = search_products(filters, 1, 10, by_meaning=False)
    found = search_products(filters, 1, 10, by_meaning=False, as_cards=True)
    assert found.total == products.total == 3
    assert all(isinstance(card, ProductCard) for card in found.items)
    for card, product in zip(found.items, products.items, strict=True):
        assert (card.id, card.name, card.slug, card.price) == (
            product.id,
            product.name,
            product.slug,
            product.price,
        )
        assert card.category.name == product.category.name
        if product.image is None:
            assert card.image is None
        else:
            assert (card.image.id, card.image.thumbnail_path) == (
                product.image.id,
                product.image.thumbnail_path,
            )


def test_a_card_answers_anything_else_from_its_product(shop):
    (card,) = search_products(SearchFilters(q="k7"), 1, 10, as_cards=True).items
    assert card.description == "Noise cancelling."
    assert card.category.slug == "headphones"
    assert card.image.width == shop["image"].width and card.image.source == "upload"
    assert not hasattr(card, "no_such_field")


def article(html: str, name: str) -> str:
    match = re.search(
        rf'<article class="card[^"]*">(?:(?!</article>).)*{name}.*?</article>', html, re.S
    )
    assert match, name
    return match.group(0)


def test_the_search_page_shows_a_card_as_the_category_page_shows_the_product(client, shop):
    searched = client.get("/search?q=kestrel").get_data(as_text=True)
    listed = client.get("/category/headphones").get_data(as_text=True)
    for name in ("Kestrel K7 Wireless Headphones", "Kestrel Buds Mini"):
        assert article(searched, name) == article(listed, name)
    assert shop["image"].thumbnail_path in article(searched, "Kestrel K7")


# -- the category filter's choices ------------------------------------------------------


def choices(client) -> list[str]:
    client.application.extensions.pop(EXTENSION_KEY, None)  # pages rendered afresh
    html = client.get("/search?q=kestrel").get_data(as_text=True)
    return re.findall(
        r'<option value="([^"]*)"', html.split('id="category"')[1].split("</select>")[0]
    )


def test_a_category_made_here_is_a_choice_at_once(client, shop):
    assert choices(client) == ["", "headphones", "laptops"]
    make_category("Cameras")
    assert choices(client) == ["", "cameras", "headphones", "laptops"]


def test_a_category_made_elsewhere_is_a_choice_after_the_recheck(app, client, shop, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(forms, "clock", lambda: now[0])
    assert choices(client) == ["", "headphones", "laptops"]
    execute_elsewhere(
        app.config["SQLALCHEMY_DATABASE_URI"],
        "INSERT INTO category (name, slug, description) VALUES ('Drones', 'drones', '')",
    )
    assert choices(client) == ["", "headphones", "laptops"]  # another process: not seen yet
    now[0] += forms.CHOICES_RECHECK_SECONDS
    assert choices(client) == ["", "drones", "headphones", "laptops"]
