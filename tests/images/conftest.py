"""A shop whose image feature talks to the fake OpenAI-compatible server."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.auth.services import create_admin
from shopai.extensions import db
from shopai.jobs import jobs_runtime

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD
from ..fakes.openai_server import FakeOpenAI
from ..jobs.conftest import FakeClock


def png(color: tuple[int, int, int] = (30, 120, 200), size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def image_settings(fake: FakeOpenAI, **env: str) -> AISettings:
    return AISettings.from_env(
        {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": fake.base_url,
            "SHOPAI_IMAGE_BACKEND": "api",
            "SHOPAI_EMBEDDING_BACKEND": "local",
            "SHOPAI_ALLOW_PRIVATE_IMAGE_URLS": "true",
            "SHOPAI_IMAGES_RETRIES": "0",
            "SHOPAI_IMAGES_TIMEOUT": "5",
            "SHOPAI_AI_BREAKER_FAILURES": "1000",
            **env,
        }
    )


@pytest.fixture
def shop_config(app_config: dict, fake_ai: FakeOpenAI) -> dict:
    return {**app_config, "SHOPAI_AI": image_settings(fake_ai)}


def running(config: dict) -> Iterator[Flask]:
    """An app in its context, its AI client, job queue and database closed afterwards."""
    app = create_app(config)
    with app.app_context():
        yield app
        flush_usage()
        ai_client().close()
        jobs_runtime(app).close()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def shop(shop_config: dict) -> Iterator[Flask]:
    yield from running(shop_config)


@pytest.fixture
def clock(shop: Flask) -> FakeClock:
    """The job system's clock, so retries come due without waiting."""
    fake = FakeClock()
    runtime = jobs_runtime(shop)
    runtime.clock = fake
    runtime.random = lambda: 0.5
    return fake


@pytest.fixture
def admin_client(shop: Flask) -> FlaskClient:
    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    client = shop.test_client()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    return client
