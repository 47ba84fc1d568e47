import re

import pytest
from flask import Flask

from shopai import create_app
from shopai.auth.models import User
from shopai.extensions import db

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_token_from, make_category, make_product


@pytest.fixture
def protected_app(app_config: dict) -> Flask:
    """The app as deployed: CSRF and rate limits switched on."""
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def signed_in(app: Flask):
    from shopai.auth.services import create_admin

    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    client = app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    return client, csrf_token_from(client.get("/admin/").get_data(as_text=True))


def test_post_without_csrf_token_is_a_400_page(protected_app):
    client, _ = signed_in(protected_app)
    response = client.post("/admin/categories/new", data={"name": "Sneaky"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert response.mimetype == "text/html"


def test_ajax_post_without_token_gets_json_400(protected_app):
    client, _ = signed_in(protected_app)
    response = client.post(
        "/admin/categories/new", json={"name": "Sneaky"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == 400


def test_ajax_post_with_x_csrftoken_header_passes(protected_app):
    client, token = signed_in(protected_app)
    response = client.post(
        "/admin/categories/new", data={"name": "Drones"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302


def test_login_needs_csrf_token_too(protected_app):
    client = protected_app.test_client()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400


def test_login_attempts_are_rate_limited(protected_app):
    client = protected_app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    data = {"email": "x@example.com", "password": "wrong password", "csrf_token": token}
    codes = [client.post("/login", data=data).status_code for _ in range(11)]
    assert codes[:10] == [400] * 10
    assert codes[10] == 429


def test_security_headers(client, app):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags(admin_client):
    cookie = admin_client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_pages_have_no_inline_scripts_or_event_handlers(admin_client):
    product = make_product()
    pages = [
        "/",
        "/products",
        "/categories",
        f"/product/{product.slug}",
        "/search?q=k",
        "/login",
        "/admin/",
        "/admin/products/new",
        f"/admin/products/{product.id}/edit",
    ]
    for url in pages:
        html = admin_client.get(url).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"inline script on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        assert 'style="' not in html, f"inline style on {url}"


def test_passwords_are_hashed(admin):
    stored = db.session.get(User, admin.id).password_hash
    assert ADMIN_PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_user_text_is_escaped_everywhere(admin_client):
    category = make_category("<img src=x onerror=alert(1)>")
    product = make_product("<script>alert('p')</script>", category=category)
    for url in ["/", "/categories", f"/product/{product.slug}", "/admin/", "/product-create"]:
        html = admin_client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
