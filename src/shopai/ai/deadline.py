"""One time budget per call, enforced on the whole exchange, not per socket read.

httpx timeouts bound each connect/read/write separately: a server that trickles a
body byte by byte, or a stream that never ends, would outlive any per-read limit.
`DeadlineTransport` wraps the real transport and stops a response body once the
deadline set with `deadline(...)` has passed. The deadline is captured when the
request is sent, so it still applies while a stream is read later.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx2

_deadline: ContextVar[float | None] = ContextVar("shopai_ai_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Requests sent inside this block must be fully received within `seconds`."""
    at = time.monotonic() + seconds
    token = _deadline.set(at)
    try:
        yield at
    finally:
        _deadline.reset(token)


def remaining(default: float) -> float:
    """Seconds left in the current budget (or `default` outside any)."""
    at = _deadline.get()
    return default if at is None else max(0.0, at - time.monotonic())


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, at: float) -> None:
        self._inner = inner
        self._at = at

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() > self._at:
                raise httpx2.ReadTimeout("the call's time budget ran out")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class DeadlineTransport(httpx2.BaseTransport):
    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        at = _deadline.get()
        if at is not None and time.monotonic() > at:
            raise httpx2.ConnectTimeout("the call's time budget ran out", request=request)
        response = self._inner.handle_request(request)
        if at is not None:
            response.stream = _DeadlineStream(response.stream, at)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self._inner.close()
