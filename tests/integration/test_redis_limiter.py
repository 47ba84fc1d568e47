"""Flask-Limiter on Redis: limits counted in one place for every web process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from shopai.config import load_settings
from shopai.extensions import limiter
from shopai.web import within_rate

from .ports import free_port
from .redis_server import RedisServer

PRODUCTION = {"SECRET_KEY": "x" * 32, "SHOPAI_TRUSTED_HOSTS": "shop.example.com"}


@pytest.mark.parametrize(
    ("environ", "storage"),
    [
        ({}, "memory://"),
        ({"REDIS_URL": "redis://cache:6379/1"}, "redis://cache:6379/1"),
        ({"REDIS_URL": "unix:///run/redis.sock"}, "redis+unix:///run/redis.sock"),
        (
            {"REDIS_URL": "redis://cache:6379/1", "RATELIMIT_STORAGE_URI": "memory://"},
            "memory://",
        ),
    ],
)
def test_the_limiter_counts_in_redis_when_redis_url_is_set(
    tmp_path: Path, environ: dict, storage: str
):
    settings = load_settings(str(tmp_path), {**PRODUCTION, **environ})
    assert settings["RATELIMIT_STORAGE_URI"] == storage
    redis = storage != "memory://"
    assert settings.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", False) is redis


def test_two_app_instances_count_against_one_limit(
    app_config: dict,
    redis_url: str,
    redis_server: RedisServer,
    make_app: Callable[[dict], Flask],
):
    config = {**app_config, "RATELIMIT_ENABLED": True, "SHOPAI_SUGGEST_RATE_LIMIT": "3 per day"}
    one = make_app(config)
    first = [one.test_client().get("/api/suggest?q=ke").status_code for _ in range(2)]
    # A second app binds the shared limiter to a new storage: in memory it would
    # start from zero; in Redis it finds the first app's two hits.
    two = make_app(config)
    second = [two.test_client().get("/api/suggest?q=ke").status_code for _ in range(2)]
    assert first + second == [200, 200, 200, 429]
    with redis_server.client() as client:
        assert client.keys("LIMITS:*")


def test_within_rate_counts_in_this_process_when_the_storage_fails(
    app_config: dict, monkeypatch: pytest.MonkeyPatch, make_app: Callable[[dict], Flask]
):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing there
    app = make_app({**app_config, "RATELIMIT_ENABLED": True, "TEST_RATE": "2 per day"})
    with app.test_request_context("/"):
        assert limiter.limiter is not None  # the Redis one: no request has failed yet
        spent = [within_rate("TEST_RATE", "test", "someone") for _ in range(3)]
    assert spent == [True, True, False]
