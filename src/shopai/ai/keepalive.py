"""Streamed replies from a hosted API give their connection back to the pool.

The SDK stops reading a stream at its `data: [DONE]` event and closes the response.
HTTP/1.1 ends a chunked body with one more, empty chunk, usually in the same packet; a
response closed before that chunk is read cannot be reused, so every streamed reply
cost a new connection: with a hosted API, a TLS handshake (one or two round trips)
before the first token of every answer. `StreamFinishingTransport` reads the end of a
stream that sent [DONE] when it is closed, waiting at most `FINISH_SECONDS`, and the
connection goes back to the pool like any other request's. A stream closed before
[DONE] (the shopper stopped the answer) is closed at once: closing its connection is
what cancels generation upstream.

Only for https: a plain-http server is a local one (the embedded llama.cpp, Ollama,
vLLM on the network), where a new connection costs a fraction of a millisecond, and
llama.cpp's server closes its connection after every stream while announcing
keep-alive, so a request sent on a connection given back would find it closing.
Nothing is ever sent twice here: a kept-alive connection the server closed is a
failed call like any other, for the client's retries and their time budget.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator

import httpx2

# The SSE event that ends an OpenAI stream, at a line's start, at the end of what came.
_DONE_AT_THE_END = re.compile(rb"(?:^|\n)data: \[DONE\]\r?\n\r?\n$")
_TAIL_BYTES = 64  # enough to hold the [DONE] event after any chunk split
FINISH_SECONDS = 0.1  # the server sends the end right after [DONE], or never will
FINISH_CHUNKS = 4  # more than the end after [DONE] is not worth reading: close instead


def finishes_streams(base_url: str | None) -> bool:
    """Whether streams to `base_url` are worth finishing (None: OpenAI's own API)."""
    return base_url is None or base_url.lower().startswith("https://")


class _FinishingStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, request: httpx2.Request) -> None:
        self._inner = inner
        self._request = request
        self._tail = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            # Only the last bytes are kept: image bodies run to megabytes.
            self._tail = (self._tail + chunk[-_TAIL_BYTES:])[-_TAIL_BYTES:]
            yield chunk

    @property
    def sent_done(self) -> bool:
        return _DONE_AT_THE_END.search(self._tail) is not None

    def close(self) -> None:
        try:
            if self.sent_done:
                self._read_the_end()
        finally:
            self._inner.close()

    def _read_the_end(self) -> None:
        """Read what follows [DONE] (only the body's end, from a well-behaved server),
        each read waiting at most FINISH_SECONDS: the transport takes its request's
        read timeout anew each time a body is iterated."""
        timeouts = self._request.extensions.get("timeout", {})
        self._request.extensions["timeout"] = {**timeouts, "read": FINISH_SECONDS}
        try:
            with contextlib.suppress(httpx2.TransportError):
                for _ in itertools.islice(self._inner, FINISH_CHUNKS):
                    pass
        finally:
            self._request.extensions["timeout"] = timeouts


class StreamFinishingTransport(httpx2.BaseTransport):
    """Wraps a transport so that streams closed after their [DONE] keep their connection."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        response.stream = _FinishingStream(response.stream, request)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self._inner.close()
