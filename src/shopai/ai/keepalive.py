"""Streamed replies give their connection back to the pool.

The SDK stops reading a stream at its `data: [DONE]` event and closes the response.
HTTP/1.1 ends a chunked body with one more, empty chunk, usually in the same packet;
a response closed before that chunk is read cannot be reused, so every streamed reply
cost a new connection (a TLS handshake, with a hosted API). `FinishingTransport` reads
the end of a stream that sent [DONE] when the stream is closed, waiting at most
`FINISH_SECONDS` for it, and the connection goes back to the pool. A stream closed
before [DONE] (the shopper stopped the answer) is closed at once, as before: closing
its connection is what cancels generation upstream.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import httpx2

DONE = b"data: [DONE]"
FINISH_SECONDS = 0.1  # the server sends the end right after [DONE], or never will
FINISH_CHUNKS = 4  # more than the end after [DONE] is not worth reading: close instead


class _FinishingStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, request: httpx2.Request) -> None:
        self._inner = inner
        self._request = request
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._done = DONE in chunk
            yield chunk

    def close(self) -> None:
        if self._done:
            self._read_the_end()
        self._inner.close()

    def _read_the_end(self) -> None:
        """Read what follows [DONE] (only the body's end, from a well-behaved server),
        each read waiting at most FINISH_SECONDS: the transport reads its request's
        timeouts anew each time a body is iterated."""
        timeouts = self._request.extensions.get("timeout", {})
        self._request.extensions["timeout"] = {**timeouts, "read": FINISH_SECONDS}
        with contextlib.suppress(httpx2.TransportError):
            for _ in itertools.islice(self._inner, FINISH_CHUNKS):
                pass


class FinishingTransport(httpx2.BaseTransport):
    """Wraps a transport so that streams closed after their [DONE] keep their connection."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        response.stream = _FinishingStream(response.stream, request)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self._inner.close()
