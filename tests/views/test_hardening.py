"""One test per defect found by the hardening review (attacker's and reviewer's view)."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from shopai import create_app
from shopai.auth.services import create_admin
from shopai.catalog.models import Product
from shopai.extensions import db
from shopai.images.models import ProductImage

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, image_bytes, make_category, make_product

# -- sign-in ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "////evil.example/phish",
        "//evil.example/phish",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
    ],
)
def test_sign_in_never_redirects_off_site(client, admin, target):
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_sign_in_still_returns_to_a_page_of_the_shop(client, admin):
    response = client.post(
        "/login?next=/admin/products%3Fpage%3D2",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    assert response.headers["Location"] == "/admin/products?page=2"


@pytest.fixture
def shop(app_config: dict, admin) -> Flask:
    """An app whose requests each get their own app context, as in production: with
    the shared test context, Flask-Login would keep its user in `g` between requests."""
    return create_app(app_config)


def sign_in(client: FlaskClient, remember: bool = False) -> None:
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    if remember:
        data["remember"] = "y"
    assert client.post("/login", data=data).status_code == 302


def cookie(client: FlaskClient, name: str) -> str:
    value = client.get_cookie(name)
    assert value is not None, f"no {name} cookie"
    return value.value


def is_signed_in(app: Flask, **cookies: str) -> bool:
    stranger = app.test_client()
    for name, value in cookies.items():
        stranger.set_cookie(name, value)
    return stranger.get("/admin/").status_code == 200


def test_a_copied_session_cookie_dies_with_sign_out(shop):
    client = shop.test_client()
    sign_in(client)
    stolen = cookie(client, "session")
    assert is_signed_in(shop, session=stolen)
    client.post("/logout")
    assert not is_signed_in(shop, session=stolen)


def test_a_password_reset_ends_every_session(shop):
    client = shop.test_client()
    sign_in(client, remember=True)
    stolen = {
        "session": cookie(client, "session"),
        "remember_token": cookie(client, "remember_token"),
    }
    assert is_signed_in(shop, **stolen)
    with shop.app_context():
        create_admin(ADMIN_EMAIL, "a brand new passphrase")
    assert not is_signed_in(shop, session=stolen["session"])
    assert not is_signed_in(shop, remember_token=stolen["remember_token"])
    assert client.get("/admin/").status_code == 302


def test_a_remember_me_cookie_dies_with_sign_out(shop):
    client = shop.test_client()
    sign_in(client, remember=True)
    first = cookie(client, "remember_token")
    assert is_signed_in(shop, remember_token=first)
    client.post("/logout")
    assert not is_signed_in(shop, remember_token=first)
    sign_in(client, remember=True)
    assert cookie(client, "remember_token") != first


@pytest.mark.parametrize(
    "password",
    [
        " " * 10,
        "a" * 12,
        "1234567890",
        "abcdefghijk",
        "password123",
        "Admin12345!",
        "qwerty12345",
        "1q2w3e4r5t",
    ],
)
def test_weak_passwords_of_enough_length_are_refused(app, password):
    from shopai.auth.services import AccountError

    with pytest.raises(AccountError):
        create_admin("owner@example.com", password)


def test_the_email_is_no_password(app):
    from shopai.auth.services import AccountError

    with pytest.raises(AccountError, match="email"):
        create_admin("longname@example.com", "longname@example.com")


# -- links and redirects ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["key=x", "endpoint=x", "_method=POST", "_external=1", "_scheme=javascript", "page=2&page=3"],
)
def test_query_parameter_names_never_crash_a_page(client, app, query):
    category = make_category("Cables")
    product = make_product("Cable", category=category)
    for url in [
        f"/product/{product.id}",
        f"/product/{product.slug}",
        f"/category/{category.id}",
        "/category/cables",
        "/products",
        "/search?q=cable",
    ]:
        glue = "&" if "?" in url else "?"
        response = client.get(f"{url}{glue}{query}")
        expected = (200, 302, 404) if query.startswith("page=") else (200, 302)
        assert response.status_code in expected, (url, query)


def test_canonical_redirects_keep_the_query_as_data(client, app):
    product = make_product("Cable")
    response = client.get(f"/product/{product.id}?key=x&endpoint=y&ref=mail")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/product/{product.slug}?endpoint=y&ref=mail"


def test_a_forged_host_header_is_refused(app_config, app):
    product_id = make_product("Cable").id
    client = create_app({**app_config, "TRUSTED_HOSTS": ["shop.example.com"]}).test_client()
    forged = {"Host": "evil.example"}
    assert client.get(f"/product/{product_id}", headers=forged).status_code == 400
    response = client.get(f"/api/products/{product_id}", headers=forged)
    assert response.status_code == 400 and response.is_json
    assert "evil.example" not in response.get_data(as_text=True)
    good = client.get(f"/api/products/{product_id}", headers={"Host": "shop.example.com"})
    assert good.get_json()["url"] == "http://shop.example.com/product/cable"


def test_development_and_tests_answer_only_to_local_names(client, app):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:5000"}).status_code == 200


def test_hsts_is_sent_when_the_shop_runs_on_https(app_config):
    plain = create_app(app_config).test_client().get("/")
    assert "Strict-Transport-Security" not in plain.headers
    secure = create_app({**app_config, "SHOPAI_HTTPS": True}).test_client().get("/")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


# -- product forms ----------------------------------------------------------------------


@pytest.mark.parametrize("price", ["1e26", "1e30", "-1e40", "9" * 40])
def test_huge_prices_are_form_errors(admin_client, price):
    category = make_category()
    response = admin_client.post(
        "/admin/products/new", data={"name": "Cable", "price": price, "category": category.id}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Product.id))) == 0


@pytest.mark.parametrize("price", ["1e26", "NaN"])
def test_huge_price_filters_are_search_errors(client, app, price):
    assert client.get(f"/search?min_price={price}").status_code == 400
    assert client.get(f"/api/products?max_price={price}").status_code == 400


@pytest.mark.parametrize(
    "name",
    [
        "\u200b\u200b\u200b",
        "\u200b\ufeff\u2060",
        "Cable\x00",
        "\u202etxt.exe",
        "\x00\x00",
        "\u3164\u3164",  # Hangul fillers are letters that draw nothing
        "\u2800\u115f\uffa0",
    ],
)
def test_invisible_and_control_character_names_are_refused(admin_client, name):
    category = make_category()
    response = admin_client.post(
        "/admin/products/new", data={"name": name, "price": "5", "category": category.id}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Product.id))) == 0
    category_response = admin_client.post("/admin/categories/new", data={"name": name})
    assert category_response.status_code == 400


def test_zero_width_characters_cannot_make_a_duplicate_category(admin_client):
    make_category("Phones")
    response = admin_client.post("/admin/categories/new", data={"name": "Pho\u200bnes"})
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)


def test_a_product_and_its_image_are_saved_together(admin_client):
    """A failure while saving the image row used to leave the product without it."""
    category = make_category()

    def fail_on_image(session, _context, _instances):
        if any(isinstance(item, ProductImage) for item in session.new):
            raise RuntimeError("disk full while saving the image row")

    event.listen(db.session, "before_flush", fail_on_image)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            admin_client.post(
                "/product-create",
                data={
                    "name": "Cable",
                    "price": "5",
                    "category": str(category.id),
                    "image": (io.BytesIO(image_bytes()), "cable.png"),
                },
                content_type="multipart/form-data",
            )
    finally:
        event.remove(db.session, "before_flush", fail_on_image)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Product.id))) == 0
