"""A shop whose assistant talks to the fake OpenAI-compatible server over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.auth.services import create_admin
from shopai.extensions import db
from shopai.search.embeddings import refresh_embeddings

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, make_category, make_product
from ..fakes.openai_server import FakeOpenAI

CATALOG = {
    "Headphones": [
        ("Kestrel K7 Wireless Headphones", "199.00", "Over-ear noise cancelling headphones."),
        ("Kestrel Buds Mini", "59.00", "Tiny true wireless earbuds for running and commuting."),
    ],
    "Laptops": [
        ("Norvik Edu 11 Student Laptop", "399.00", "A light, durable laptop for school work."),
        ("Norvik AirLite 13 Laptop", "999.00", "Thin and light with a full-day battery."),
    ],
    "Speakers": [("Boomcan Go Bluetooth Speaker", "79.00", "Waterproof portable speaker.")],
}


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def chat_settings(fake: FakeOpenAI, **env: str) -> AISettings:
    """Chat on the fake server; embeddings stay on the embedded MiniLM."""
    return AISettings.from_env(
        {
            "OPENAI_BASE_URL": fake.base_url,
            "SHOPAI_EMBEDDING_BACKEND": "local",
            "SHOPAI_CHAT_TIMEOUT": "5",
            "SHOPAI_CHAT_RETRIES": "0",
            "SHOPAI_AI_BREAKER_RESET_SECONDS": "600",
            **env,
        }
    )


@pytest.fixture
def shop_config(app_config: dict, fake_ai: FakeOpenAI) -> dict:
    return {**app_config, "SHOPAI_AI": chat_settings(fake_ai)}


def running(config: dict) -> Iterator[Flask]:
    """An app in its context; its AI client's connections and usage writer are closed
    after the test."""
    app = create_app(config)
    with app.app_context():
        yield app
        flush_usage()
        ai_client().close()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def shop(shop_config: dict) -> Iterator[Flask]:
    for app in running(shop_config):
        for category_name, products in CATALOG.items():
            category = make_category(category_name)
            for name, price, description in products:
                make_product(name, price, category, description)
        refresh_embeddings()
        yield app


@pytest.fixture
def shopper(shop: Flask) -> FlaskClient:
    return shop.test_client()


@pytest.fixture
def admin_client_for(shop: Flask) -> FlaskClient:
    """An admin signed in to `shop`."""
    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    client = shop.test_client()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    return client
