"""A real Redis for the tests in this folder: the session's `redis-server` (tests/conftest.py,
see redis_server.py), emptied before each test that uses it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from shopai import create_app
from shopai.ai_service import ai_client, flush_usage
from shopai.cache import close_cache
from shopai.extensions import db, limiter
from shopai.jobs import jobs_runtime

from .redis_server import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test Redis, empty, and exported as REDIS_URL: apps built in the test derive
    every Redis setting from it (job queue, rate limits, shared caches)."""
    redis_server.flush()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    return redis_server.url


def close_app(app: Flask) -> None:
    """Close an app's AI client, job queue, shared cache and database connections."""
    with app.app_context():
        flush_usage()
        ai_client().close()
        jobs_runtime(app).close()
        close_cache(app)
        db.session.remove()
        db.engine.dispose()
    # The module's one Limiter outlives its apps, and with it its note that the storage
    # is down (Flask-Limiter expects one app per process): the next app starts afresh.
    limiter._storage_dead = False


@pytest.fixture
def make_app() -> Iterator[Callable[[dict], Flask]]:
    """Build apps (as separate web processes would each have one); all closed after."""
    made: list[Flask] = []

    def make(config: dict) -> Flask:
        made.append(create_app(config))
        return made[-1]

    yield make
    for app in reversed(made):
        close_app(app)


@pytest.fixture
def redis_app(app_config: dict, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        yield app
    close_app(app)
