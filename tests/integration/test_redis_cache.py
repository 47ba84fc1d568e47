"""The shared caches (shopai.cache) on a real Redis: what one app instance computes,
another finds; an unreachable Redis is a cache miss, never an error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from flask import Flask

from shopai.ai.settings import AISettings
from shopai.cache import MemoryBackend, MemoryCache, RedisBackend, backend, get, put
from shopai.search import keyword
from shopai.search.embeddings import query_vector
from shopai.suggest.services import suggest

from ..factories import make_category, make_product
from ..fakes.openai_server import FakeOpenAI
from .ports import free_port

EMBEDDINGS = "/embeddings"


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.without_redis("compares an app without REDIS_URL")
def test_the_backend_is_redis_exactly_when_redis_url_is_set(app: Flask, redis_app: Flask):
    assert isinstance(backend(app), MemoryBackend)
    assert isinstance(backend(redis_app), RedisBackend)


def test_memory_cache_keeps_the_newest_entries_until_they_expire():
    clock = Ticking()
    cache = MemoryCache(size=2, clock=clock)
    put(cache, "a", b"1", ttl=10)
    put(cache, "b", b"2", ttl=10)
    assert get(cache, "a") == b"1"  # now the most recently used
    put(cache, "c", b"3", ttl=10)
    assert cache.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
    clock.now += 11
    assert get(cache, "a") is None and len(cache) == 1


@pytest.fixture
def two_apps(
    app_config: dict, redis_url: str, make_app: Callable[[dict], Flask]
) -> tuple[Flask, Flask]:
    """Two app instances (as two web processes would have) on one database and Redis."""
    config = {**app_config, "SHOPAI_SUGGEST_RECHECK_SECONDS": 0.0}
    return make_app(config), make_app(config)


def test_suggestion_hit_counts_made_by_one_app_are_used_by_another(
    two_apps: tuple[Flask, Flask], monkeypatch: pytest.MonkeyPatch
):
    one, two = two_apps
    with one.app_context():
        category = make_category("Headphones")
        make_product("Kestrel K7 Wireless Headphones", "199.00", category)
        make_product("Kestrel Buds Mini", "59.00", category)
        first = suggest("kestrel")
    assert [s.hits for s in first.suggestions]

    counted: list[str] = []
    real_count = keyword.count
    monkeypatch.setattr(keyword, "count", lambda *a: counted.append(a[1]) or real_count(*a))
    with two.app_context():
        again = suggest("kestrel")
    assert again.suggestions == first.suggestions
    assert counted == []  # every count came from Redis

    with one.app_context():  # the catalog changes: old counts are not used
        make_product("Kestrel Sport Earbuds", "79.00", category)
    with two.app_context():
        changed = suggest("kestrel")
    assert counted
    assert max(s.hits for s in changed.suggestions) == 3


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_a_query_vector_is_embedded_once_for_every_app(
    app_config: dict, redis_url: str, fake_ai: FakeOpenAI, make_app: Callable[[dict], Flask]
):
    settings = AISettings.from_env(
        {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": fake_ai.base_url,
            "SHOPAI_EMBEDDING_BACKEND": "api",
        }
    )
    config = {**app_config, "SHOPAI_AI": settings}
    vectors = []
    for app in (make_app(config), make_app(config)):
        with app.app_context():
            vectors.append(query_vector("USB-C  hub" if vectors else "usb-c hub"))
    assert len(fake_ai.requests_to(EMBEDDINGS)) == 1
    first, second = vectors
    assert first is not None and second is not None
    assert second.dtype == np.dtype("<f4") and np.array_equal(first, second)


@pytest.fixture
def unreachable_redis(monkeypatch: pytest.MonkeyPatch) -> str:
    """A REDIS_URL where nothing listens (the port was free a moment ago)."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    return url


def test_an_unreachable_redis_is_a_miss_said_once_and_then_left_alone(
    unreachable_redis: str, caplog: pytest.LogCaptureFixture
):
    clock = Ticking()
    shared = RedisBackend(unreachable_redis, clock=clock)
    cache = shared.cache("test", size=10)
    with caplog.at_level(logging.WARNING, logger="shopai.cache"):
        put(cache, "a", b"1", ttl=10)
        assert get(cache, "a") is None
        assert shared.client() is None  # not tried again for a while
        clock.now += 60
        assert shared.client() is not None
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1
    shared.close()


def test_pages_work_while_redis_is_down(
    app_config: dict, unreachable_redis: str, make_app: Callable[[dict], Flask]
):
    config = {**app_config, "RATELIMIT_ENABLED": True, "SHOPAI_SUGGEST_RATE_LIMIT": "2 per day"}
    app = make_app(config)
    with app.app_context():
        make_product("Kestrel K7 Wireless Headphones", "199.00", make_category("Headphones"))
    client = app.test_client()
    assert client.get("/search?q=kestrel").status_code == 200
    widget = {"X-Requested-With": "fetch"}  # may spend the expansion budget too
    codes = [
        client.get("/api/suggest?q=kestrel&settled=1", headers=widget).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]  # counted in this process meanwhile
