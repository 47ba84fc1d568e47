"""Connections to a model server are reused: streamed replies give theirs back to the
pool, and a kept-alive connection the server has closed costs a resend, not an error.

The SDK stops reading a stream at its `data: [DONE]` event and closes the response.
HTTP/1.1 ends a chunked body with one more, empty chunk, usually in the same packet;
a response closed before that chunk is read cannot be reused, so every streamed reply
cost a new connection (a TLS handshake, with a hosted API). `KeepAliveTransport` reads
the end of a stream that sent [DONE] when the stream is closed, waiting at most
`FINISH_SECONDS` for it, and the connection goes back to the pool. A stream closed
before [DONE] (the shopper stopped the answer) is closed at once, as before: closing
its connection is what cancels generation upstream.

A server may close a kept-alive connection whenever it likes: at its idle timeout, or,
like llama.cpp's server (the embedded model), right after every streamed reply while
still announcing keep-alive. The pool drops connections it can see are closed, but a
request sent in the moment before the server's close arrives fails with no answer at
all. The server never read that request, so it is sent again, on another connection;
only a request that went out on a reused connection, since a new connection that
fails so says something about the server.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx2

DONE = b"data: [DONE]"
FINISH_SECONDS = 0.1  # the server sends the end right after [DONE], or never will
FINISH_CHUNKS = 4  # more than the end after [DONE] is not worth reading: close instead
# A pool can hold several connections the server closed at once (a restart): each
# resend finds the next one, or a new connection. More than this is not a stale pool.
STALE_RESENDS = 3
# What a request sent on a connection the server had closed fails with: no response
# (h11 saw the close before any byte of one), or the server's reset of the connection.
STALE_ERRORS = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)

Trace = Callable[[str, dict[str, Any]], None]


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


class _NewConnectionSpy:
    """Notes, through httpcore's `trace` extension, whether sending a request opened a
    new connection: if it did not, the request went out on a kept-alive one. Any trace
    the caller set is still called."""

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request
        self._outer: Trace | None = request.extensions.get("trace")
        self.connected = False

    def __enter__(self) -> _NewConnectionSpy:
        self._request.extensions["trace"] = self._trace
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._outer is None:
            self._request.extensions.pop("trace", None)
        else:
            self._request.extensions["trace"] = self._outer

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event.startswith("connection.connect_"):  # connect_tcp, connect_unix_socket
            self.connected = True
        if self._outer is not None:
            self._outer(event, info)


class KeepAliveTransport(httpx2.BaseTransport):
    """Wraps a transport so that streams closed after their [DONE] keep their connection,
    and requests that found a kept-alive connection closed under them are sent again."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._send(request)
        response.stream = _FinishingStream(response.stream, request)  # type: ignore[arg-type]
        return response

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        # Only a body already in memory can be sent twice (the SDK's JSON always is).
        replayable = isinstance(request.stream, httpx2.ByteStream)
        for resend in itertools.count():
            with _NewConnectionSpy(request) as spy:
                try:
                    return self._inner.handle_request(request)
                except STALE_ERRORS:
                    if spy.connected or not replayable or resend >= STALE_RESENDS:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._inner.close()
