"""Anonymous catalog pages are served again until the catalog changes, never longer."""

from __future__ import annotations

import pytest
from sqlalchemy import event, update

from shopai import create_app
from shopai.catalog import services as catalog
from shopai.catalog.models import Product
from shopai.extensions import db
from shopai.page_cache import EXTENSION_KEY
from shopai.suggest.recording import flush_searches

from ..factories import execute_elsewhere, make_category, make_product


@pytest.fixture
def queries(app):
    """SELECTs that reach the catalog tables during a block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "product" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def product(app):
    return make_product("Kestrel K7 Wireless Headphones", category=make_category("Headphones"))


PAGES = ["/", "/products", "/product/kestrel-k7-wireless-headphones", "/search?q=kestrel"]


@pytest.mark.parametrize("url", PAGES)
def test_a_page_seen_before_is_served_without_queries(client, product, queries, url):
    first = client.get(url)
    assert flush_searches()  # counting the search reads the catalog, in the background
    queries.clear()
    again = client.get(url)
    assert again.status_code == 200 and again.data == first.data
    assert queries == []


def test_an_edit_shows_at_once(client, product):
    assert "Kestrel K7" in client.get("/search?q=kestrel").get_data(as_text=True)
    catalog.update_product(
        product, name="Kestrel K9 Headphones", price=product.price, category=product.category
    )
    page = client.get("/search?q=kestrel").get_data(as_text=True)
    assert "Kestrel K9" in page and "Kestrel K7" not in page


def test_a_write_outside_the_orm_shows_at_once(client, product):
    client.get("/products")
    with db.engine.begin() as connection:
        connection.execute(update(Product).values(name="Renamed In Bulk"))
    db.session.expire_all()  # the test shares one session across requests; the shop does not
    assert "Renamed In Bulk" in client.get("/products").get_data(as_text=True)


def test_another_process_changes_show_after_the_recheck(app, client, product):
    cache = app.extensions[EXTENSION_KEY]
    now = [0.0]
    cache._clock = lambda: now[0]
    client.get("/products")
    execute_elsewhere(
        app.config["SQLALCHEMY_DATABASE_URI"],
        "UPDATE product SET name = 'Changed Elsewhere', updated_at = '2999-01-01 00:00:00'",
    )
    db.session.expire_all()
    assert "Changed Elsewhere" not in client.get("/products").get_data(as_text=True)
    now[0] += cache.recheck_seconds
    assert "Changed Elsewhere" in client.get("/products").get_data(as_text=True)


def test_signed_in_staff_and_flashed_messages_bypass_the_cache(admin_client, product):
    staff_page = admin_client.get("/products").get_data(as_text=True)
    assert 'name="csrf-token"' in staff_page
    admin_client.post("/logout")
    page = admin_client.get("/").get_data(as_text=True)
    assert "Signed out." in page
    assert "Signed out." not in admin_client.get("/").get_data(as_text=True)
    assert 'name="csrf-token"' not in admin_client.get("/products").get_data(as_text=True)


def test_anonymous_pages_set_no_cookie_and_scripts_fetch_a_token(app_config, product):
    shop = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = shop.test_client()
    page = client.get("/products")
    assert "Set-Cookie" not in page.headers
    assert 'name="csrf-token"' not in page.get_data(as_text=True)
    assert client.post("/logout").status_code == 400
    token = client.get("/csrf-token").get_json()["csrf_token"]
    assert client.post("/logout", headers={"X-CSRFToken": token}).status_code == 302


def test_the_cache_can_be_switched_off(app_config, product):
    shop = create_app({**app_config, "SHOPAI_PAGE_CACHE_SIZE": 0})
    assert EXTENSION_KEY not in shop.extensions
    assert shop.test_client().get("/products").status_code == 200


def test_a_change_elsewhere_during_rendering_is_not_kept_as_current(app, client, product):
    """The revision was read after rendering, so a page rendered from the old catalog was
    stored as if it showed the new one."""
    from flask import template_rendered

    cache = app.extensions[EXTENSION_KEY]
    now = [0.0]
    cache._clock = lambda: now[0]
    database_uri = app.config["SQLALCHEMY_DATABASE_URI"]

    def change_the_price_elsewhere(_sender, **_extra):
        template_rendered.disconnect(change_the_price_elsewhere)
        execute_elsewhere(
            database_uri, "UPDATE product SET price = 123.45, updated_at = '2999-01-01 00:00:00'"
        )
        now[0] += cache.recheck_seconds  # the next request rechecks the revision

    template_rendered.connect(change_the_price_elsewhere)
    assert "$199.00" in client.get("/products").get_data(as_text=True)
    db.session.expire_all()
    assert "$123.45" in client.get("/products").get_data(as_text=True)
