"""Small caches that several processes should share: in memory, or in Redis.

A cache here holds values that are expensive to make and cheap to make again: the
catalog search's hit count for a suggestion, the vector of a shopper's query. With
several web processes (gunicorn workers) each would otherwise pay for the same
value once per process; with `REDIS_URL` set they pay once between them.

The backend is chosen once, at start-up (`init_cache`): Redis when `REDIS_URL` is
set, else a dictionary in this process. Callers ask for a named `Cache` and never
branch on the backend. Redis is an optimisation, never a dependency: when it cannot
be reached a read is a miss and a write is dropped (logged once, then left alone
for `RETRY_SECONDS`, so a down server costs no request a connect timeout each
time), and nothing a shopper sees fails because of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from flask import Flask, current_app

log = logging.getLogger(__name__)

EXTENSION_KEY = "shopai.cache"
KEY_PREFIX = "shopai:cache:"
# Redis answers on a local network in well under a millisecond; past this it is
# treated as down (the value is made again instead of waited for).
SOCKET_TIMEOUT_SECONDS = 0.25
# After a failure, Redis is left alone this long before it is tried again.
RETRY_SECONDS = 5.0


class Cache(Protocol):
    """Bytes by key, each kept for at most `ttl` seconds (and as room allows)."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set_many(self, items: Mapping[str, bytes], ttl: float) -> None: ...


def get(cache: Cache, key: str) -> bytes | None:
    return cache.get_many([key])[0]


def put(cache: Cache, key: str, value: bytes, ttl: float) -> None:
    cache.set_many({key: value}, ttl)


class MemoryCache:
    """A least-recently-used dictionary of this process, bounded by `size` entries."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        found: list[bytes | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now:
                    del self._entries[key]
                    entry = None
                if entry is not None:
                    self._entries.move_to_end(key)
                found.append(None if entry is None else entry[1])
        return found

    def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        expires = self._clock() + ttl
        with self._lock:
            for key, value in items.items():
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class RedisCache:
    """Keys under `shopai:cache:<name>:` of one Redis client. Redis bounds its own
    memory (configure `maxmemory` with an LRU policy); every key has a TTL."""

    def __init__(self, backend: RedisBackend, name: str) -> None:
        self._backend = backend
        self._prefix = f"{KEY_PREFIX}{name}:"

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        client = self._backend.client()
        if client is None:
            return [None] * len(keys)
        try:
            values = client.mget([self._prefix + key for key in keys])
        except Exception as exc:  # redis.RedisError, OSError: a miss, never an error page
            self._backend.failed(exc)
            return [None] * len(keys)
        return [value if isinstance(value, bytes) else None for value in values]

    def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        client = self._backend.client()
        if client is None or not items:
            return
        milliseconds = max(1, round(ttl * 1000))
        try:
            with client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self._prefix + key, value, px=milliseconds)
                pipe.execute()
        except Exception as exc:
            self._backend.failed(exc)


class MemoryBackend:
    """One `MemoryCache` per name, each with its own bound."""

    def __init__(self) -> None:
        self._caches: dict[str, MemoryCache] = {}
        self._lock = threading.Lock()

    def cache(self, name: str, size: int) -> Cache:
        with self._lock:
            return self._caches.setdefault(name, MemoryCache(size))

    def describe(self) -> str:
        return "memory (this process)"

    def close(self) -> None:
        with self._lock:
            self._caches.clear()


class RedisBackend:
    """One connection pool to the Redis at `url` (made lazily, and again after a
    `fork`: redis-py's pool notices the new process id)."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._clock = clock
        self._lock = threading.Lock()
        self._client: Any = None
        self._down_until = -float("inf")

    def cache(self, name: str, size: int) -> Cache:
        return RedisCache(self, name)

    def describe(self) -> str:
        return "Redis"

    def client(self) -> Any:
        """The client, or None while Redis is known to be down."""
        if self._clock() < self._down_until:
            return None
        with self._lock:
            if self._client is None:
                import redis

                self._client = redis.Redis.from_url(
                    self.url,
                    socket_timeout=SOCKET_TIMEOUT_SECONDS,
                    socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                    retry_on_timeout=False,
                )
            return self._client

    def failed(self, error: BaseException) -> None:
        """Leave Redis alone for a while; say so once per outage, not per request."""
        first = self._clock() >= self._down_until
        self._down_until = self._clock() + RETRY_SECONDS
        if first:
            log.warning(
                "shared cache unavailable (%s); computing values instead for %.0f s",
                type(error).__name__,
                RETRY_SECONDS,
            )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
            client.connection_pool.disconnect()


Backend = MemoryBackend | RedisBackend


def init_cache(app: Flask) -> None:
    """Choose the backend for this app, once: Redis when `REDIS_URL` is set."""
    url = app.config.get("REDIS_URL")
    app.extensions[EXTENSION_KEY] = RedisBackend(url) if url else MemoryBackend()


def backend(app: Flask | None = None) -> Backend:
    return (app or current_app).extensions[EXTENSION_KEY]


def shared_cache(name: str, size: int) -> Cache:
    """The cache called `name` of the current app (`size` bounds the in-memory one)."""
    return backend().cache(name, size)


def close_cache(app: Flask) -> None:
    """Close the Redis connections of `app` (tests, and processes shutting down)."""
    found = app.extensions.get(EXTENSION_KEY)
    if found is not None:
        found.close()
