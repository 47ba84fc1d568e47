"""A scriptable fake of the OpenAI HTTP API, for tests and offline demos.

Why a real HTTP server instead of mocking the SDK: the code under test talks to the official
`openai` SDK, and the interesting failures (rate limits, malformed bodies, slow replies, streams
that are cut off, clients that hang up mid-stream) happen on the wire. Serving them from a real
socket exercises the SDK's own parsing, retry and cleanup paths exactly as production would.

Standard library only, so it works wherever the test suite runs::

    with FakeOpenAI() as fake:
        fake.reply_chat("Hi!")
        client = OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        ...
        assert fake.requests_to("/chat/completions")[0].body["model"] == "gpt-x"

Replies are queued per endpoint kind ("chat", "embeddings", "images") and consumed FIFO; when a
queue is empty a sensible default reply is sent. Run ``python -m tests.fakes.openai_server`` from
the repository root to serve the defaults for a demo.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import secrets
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_CHAT_TEXT",
    "DEFAULT_MODEL",
    "DEFAULT_PNG",
    "KINDS",
    "FakeOpenAI",
    "Headers",
    "RecordedRequest",
    "fake_embedding",
]

KINDS = ("chat", "embeddings", "images")
DEFAULT_MODEL = "fake-model"
DEFAULT_CHAT_TEXT = "Hello from the fake server."
EMBEDDING_DIMENSIONS = 8

_POLL_SECONDS = 0.02  # granularity of every sleep, so stop() and hang-ups are noticed quickly
_JOIN_SECONDS = 2.0
_ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images",
}
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}


def _make_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """Build a tiny valid PNG so image replies decode with Pillow without a fixture file."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


DEFAULT_PNG = _make_png()


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """Deterministic unit vector for `text`, so tests can predict the default embeddings."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = [byte / 127.5 - 1.0 for byte in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


class Headers(dict[str, str]):
    """A dict of request headers with lower-cased keys whose lookups ignore case, as HTTP does.

    So both `headers["authorization"]` and `headers.get("Authorization")` work in tests.
    """

    def __init__(self, items: Any = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in dict(items).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request as the server saw it; `headers` lookups are case-insensitive."""

    method: str
    path: str
    headers: Headers
    body: Any
    raw: bytes
    query: str = ""


# --- queued reply items (one item answers one request) ---------------------------------------


@dataclass(frozen=True)
class _Chat:
    text: str | None
    prompt_tokens: int = 7
    completion_tokens: int = 5
    finish_reason: str = "stop"
    model: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class _Stream:
    deltas: tuple[dict[str, Any], ...]
    chunk_delay: float = 0.0
    cut_after: int | None = None
    prompt_tokens: int = 7
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    model: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()  # whole calls, for a plain request's reply


@dataclass(frozen=True)
class _Embeddings:
    vectors: tuple[tuple[float, ...], ...] | None


@dataclass(frozen=True)
class _Images:
    data: bytes
    n: int = 1
    url: str | None = None


@dataclass(frozen=True)
class _Error:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Malformed:
    body: bytes
    status: int
    content_type: str


@dataclass(frozen=True)
class _Route:
    """A hosted file or a redirect: a canned GET answer at an exact path."""

    status: int
    body: bytes
    headers: dict[str, str]


_Item = _Chat | _Stream | _Embeddings | _Images | _Error | _Malformed


def _stream_from_text(deltas: list[str]) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for i, text in enumerate(deltas):
        out.append({"role": "assistant", "content": text} if i == 0 else {"content": text})
    return tuple(out)


def _tool_call_deltas(
    calls: tuple[dict[str, Any], ...], fragment_chars: int
) -> list[dict[str, Any]]:
    """Tool calls as OpenAI streams them: per call, a first delta with its index, id and
    name and empty arguments, then the arguments in pieces that carry only the index."""
    out: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        function = call["function"]
        head = {"name": function["name"], "arguments": ""}
        out.append(
            {
                "tool_calls": [
                    {"index": index, "id": call["id"], "type": "function", "function": head}
                ]
            }
        )
        arguments = function["arguments"]
        for start in range(0, len(arguments), max(1, fragment_chars)):
            piece = {"arguments": arguments[start : start + max(1, fragment_chars)]}
            out.append({"tool_calls": [{"index": index, "function": piece}]})
    return out


def _as_stream(item: _Chat | _Stream | None) -> _Stream:
    """A streaming request was made: turn whatever is queued into stream chunks."""
    if isinstance(item, _Stream):
        return item
    chat = item or _Chat(DEFAULT_CHAT_TEXT)
    if chat.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(chat.tool_calls)]
        deltas: tuple[dict[str, Any], ...] = (
            {"role": "assistant", "content": None, "tool_calls": calls},
        )
    else:
        deltas = _stream_from_text([chat.text or ""])
    return _Stream(
        deltas,
        prompt_tokens=chat.prompt_tokens,
        completion_tokens=chat.completion_tokens,
        finish_reason=chat.finish_reason,
        model=chat.model,
    )


def _as_chat(item: _Chat | _Stream | None) -> _Chat:
    """A plain request was made: a queued stream is answered as one joined message."""
    if item is None:
        return _Chat(DEFAULT_CHAT_TEXT)
    if isinstance(item, _Chat):
        return item
    text = "".join(d.get("content") or "" for d in item.deltas)
    completion = item.completion_tokens if item.completion_tokens is not None else len(item.deltas)
    content = text if text or not item.tool_calls else None
    return _Chat(
        content, item.prompt_tokens, completion, item.finish_reason, item.model, item.tool_calls
    )


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "api_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _embedding_inputs(value: Any) -> list[str]:
    """Normalise the four input shapes (str, [str], [int], [[int]]) to one key per vector."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [json.dumps(value)]
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return [json.dumps(value)]


# --- the server ------------------------------------------------------------------------------


class FakeOpenAI:
    """A fake OpenAI-compatible server on a real localhost socket, scripted per endpoint kind.

    Conversions, so one script serves either request style: a plain chat reply (or tool call)
    answers a streaming request as a one-delta stream, and a queued stream answers a plain
    request as one joined message. For images the request's "n" wins over the queued `n`.
    Error, malformed and delay scripting apply to whichever kind they name.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self.stream_disconnects = 0
        self.connections = 0  # accepted: a client that reuses its connections opens few
        self.client_gone = threading.Event()
        self.errors: list[BaseException] = []  # unexpected server bugs, never hang-ups
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Item]] = {kind: deque() for kind in KINDS}
        self._delays: dict[str, deque[float]] = {kind: deque() for kind in KINDS}
        self._routes: dict[str, _Route] = {}
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    # lifecycle

    def start(self) -> FakeOpenAI:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, hang up on open connections and wait briefly for handler threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes any delayed or slow-streaming handler
        server.shutdown()
        server.server_close()
        server.hang_up_all()
        if thread is not None:
            thread.join(_JOIN_SECONDS)
        server.join_handlers(_JOIN_SECONDS)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # addresses

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url`."""
        return self.url_for("/v1")

    def url_for(self, path: str) -> str:
        """Absolute URL of `path` on this server (the port is only known once started)."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; call start() first")
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    # inspection

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        """Recorded requests whose path ends with `path_suffix`, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    # scripting: chat

    def reply_chat(
        self,
        text: str = DEFAULT_CHAT_TEXT,
        *,
        prompt_tokens: int = 7,
        completion_tokens: int = 5,
        finish_reason: str = "stop",
        model: str | None = None,
    ) -> None:
        """Queue a plain assistant message (streamed as one delta if the request streams)."""
        self._push("chat", _Chat(text, prompt_tokens, completion_tokens, finish_reason, model))

    def reply_tool_call(
        self, name: str, arguments: dict[str, Any], *, call_id: str = "call_1"
    ) -> None:
        """Queue an assistant message that calls one function tool."""
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        self._push("chat", _Chat(None, finish_reason="tool_calls", tool_calls=(call,)))

    def reply_json(self, obj: Any) -> None:
        """Queue a chat reply whose content is `json.dumps(obj)` (structured-output style)."""
        self.reply_chat(json.dumps(obj))

    def reply_stream(
        self,
        deltas: list[str],
        *,
        chunk_delay: float = 0.0,
        cut_after: int | None = None,
        prompt_tokens: int = 7,
        completion_tokens: int | None = None,
    ) -> None:
        """Queue an SSE stream; `cut_after=N` hangs up after N deltas, without finish or [DONE]."""
        self._push(
            "chat",
            _Stream(
                _stream_from_text(list(deltas)),
                chunk_delay=chunk_delay,
                cut_after=cut_after,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            ),
        )

    def reply_stream_tool_calls(
        self,
        calls: list[tuple[str, dict[str, Any] | str]],
        *,
        text: list[str] | None = None,
        fragment_chars: int = 5,
        chunk_delay: float = 0.0,
        cut_after: int | None = None,
        prompt_tokens: int = 7,
        completion_tokens: int | None = None,
    ) -> None:
        """Queue an SSE stream that calls function tools, as (name, arguments) pairs, the
        way OpenAI streams them: the `text` deltas first, then each call's JSON arguments
        split into `fragment_chars`-sized pieces across chunks; finish reason "tool_calls".
        Arguments given as a str are sent verbatim (malformed JSON, for error tests).
        Ids are "call_1", "call_2", ... A plain request gets the calls in one message."""
        whole = tuple(
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
            for number, (name, arguments) in enumerate(calls, start=1)
        )
        deltas = list(_stream_from_text(list(text or [])))
        tool_deltas = _tool_call_deltas(whole, fragment_chars)
        if not deltas and tool_deltas:
            tool_deltas[0] = {"role": "assistant", "content": None, **tool_deltas[0]}
        self._push(
            "chat",
            _Stream(
                tuple(deltas + tool_deltas),
                chunk_delay=chunk_delay,
                cut_after=cut_after,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason="tool_calls",
                tool_calls=whole,
            ),
        )

    # scripting: embeddings and images

    def reply_embeddings(self, vectors: list[list[float]] | None = None) -> None:
        """Queue exact vectors, or None for the deterministic default for each input."""
        frozen = None if vectors is None else tuple(tuple(v) for v in vectors)
        self._push("embeddings", _Embeddings(frozen))

    def reply_image_b64(self, data: bytes, n: int = 1) -> None:
        """Queue an image reply carrying `data` inline as b64_json."""
        self._push("images", _Images(data, n))

    def reply_image_url(self, data: bytes, *, content_type: str = "image/png", n: int = 1) -> None:
        """Queue an image reply whose URL points at `data` hosted on this server."""
        ext = _EXTENSIONS.get(content_type, ".bin")
        url = self.serve_file(
            f"/files/{secrets.token_hex(8)}{ext}", data, content_type=content_type
        )
        self._push("images", _Images(data, n, url))

    # scripting: failures

    def reply_error(
        self,
        status: int,
        *,
        message: str = "fake error",
        headers: dict[str, str] | None = None,
        kind: str = "chat",
    ) -> None:
        """Queue an OpenAI-style JSON error, e.g. 429 with {"Retry-After": "1"}."""
        self._push(kind, _Error(status, message, dict(headers or {})))

    def reply_malformed(
        self,
        body: bytes = b"{not json",
        *,
        status: int = 200,
        content_type: str = "application/json",
        kind: str = "chat",
    ) -> None:
        """Queue a raw body the SDK cannot parse, to test defensive error handling."""
        self._push(kind, _Malformed(body, status, content_type))

    def delay_next(self, seconds: float, kind: str = "chat") -> None:
        """Make the next reply of `kind` (queued or default) wait `seconds` before being sent."""
        self._check_kind(kind)
        with self._lock:
            self._delays[kind].append(seconds)

    def release_delays(self) -> None:
        """End every delay now, and every one still to come: a test holds an answer
        until it has seen what it came for (who is waiting for it), then lets it go."""
        self._released.set()

    # scripting: plain HTTP

    def serve_file(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str = "image/png",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Host arbitrary bytes at `path` (GET/HEAD) and return its absolute URL."""
        path = "/" + path.lstrip("/")
        route_headers = {"Content-Type": content_type, **(headers or {})}
        with self._lock:
            self._routes[path] = _Route(status, bytes(data), route_headers)
        return self.url_for(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Make GET `path` answer a redirect to `location`; returns the absolute URL of `path`."""
        path = "/" + path.lstrip("/")
        with self._lock:
            self._routes[path] = _Route(status, b"", {"Location": location})
        return self.url_for(path)

    # internals used by the handler

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def _push(self, kind: str, item: _Item) -> None:
        self._check_kind(kind)
        with self._lock:
            self._queues[kind].append(item)

    def _next(self, kind: str) -> tuple[_Item | None, float]:
        with self._lock:
            queue, delays = self._queues[kind], self._delays[kind]
            return (queue.popleft() if queue else None), (delays.popleft() if delays else 0.0)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _route(self, path: str) -> _Route | None:
        with self._lock:
            return self._routes.get(path)

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-fake{self._ids}"

    def _note_disconnect(self) -> None:
        if self._stopping.is_set():
            return  # we hung up on the client, not the other way round
        with self._lock:
            self.stream_disconnects += 1
        self.client_gone.set()


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can hang up on them."""

    daemon_threads = True
    block_on_close = False  # stop() joins with a timeout instead of forever

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        self._live: dict[socket.socket, threading.Thread] = {}
        self._live_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take
        # seconds on some machines; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeOpenAI-conn:{client_address[1]}",
            daemon=True,
        )
        with self._live_lock:
            self._live[request] = thread
            self.fake.connections += 1
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            with self._live_lock:
                self._live.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.fake._stopping.is_set():
            return  # hang-ups and teardown are normal for this server, never worth a traceback
        if exc is not None:
            self.fake.errors.append(exc)
        super().handle_error(request, client_address)

    def hang_up_all(self) -> None:
        """Wake handler threads blocked on keep-alive reads; each closes its own socket."""
        with self._live_lock:
            sockets = list(self._live)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._live_lock:
            threads = list(self._live.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests to the scripted replies of its FakeOpenAI."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real API
    # Headers and body go out in separate writes; without TCP_NODELAY every keep-alive
    # request would wait ~40 ms for a delayed ACK, drowning what the benchmark measures.
    disable_nagle_algorithm = True
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    server: _Server

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client hung up, or stop() did
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # plumbing

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        request_id = {"x-request-id": self.fake._new_id("req")}
        self._send(status, json.dumps(obj).encode(), headers={**request_id, **(headers or {})})

    def _send_error_json(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send_json(status, _error_body(status, message), headers)

    def _peer_closed(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client to hang up; True if it did."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            if not readable:
                return False
            peeked = self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        if peeked:  # the client sent more bytes (pipelining); it is still there
            time.sleep(timeout)
            return False
        return True

    def _wait(self, seconds: float) -> bool:
        """Sleep in small steps; False as soon as the server stops or the client hangs up."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not self.fake._released.is_set():
            if self.fake._stopping.is_set() or self._peer_closed(min(_POLL_SECONDS, remaining)):
                return False
        return not self.fake._stopping.is_set()

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # routing

    def _dispatch(self) -> None:
        raw = self._read_body()
        path, _, query = self.path.partition("?")
        headers = Headers(self.headers.items())
        body = _parse_json(raw)
        self.fake._record(RecordedRequest(self.command, path, headers, body, raw, query))

        route = self.fake._route(path)
        if route is not None:
            if self.command in ("GET", "HEAD"):
                content_type = route.headers.get("Content-Type")
                extra = {k: v for k, v in route.headers.items() if k != "Content-Type"}
                self._send(route.status, route.body, content_type, extra)
            else:
                self._send_error_json(405, f"{self.command} not allowed on {path}")
            return

        kind = _ENDPOINTS.get(path)
        if kind is not None:
            if self.command != "POST":
                self._send_error_json(405, f"{self.command} not allowed on {path}")
                return
            self._answer(kind, body)
        elif path == "/v1/models" and self.command in ("GET", "HEAD"):
            self._send_json(200, {"object": "list", "data": [_model(DEFAULT_MODEL)]})
        elif path.startswith("/v1/models/") and self.command in ("GET", "HEAD"):
            self._send_json(200, _model(path.removeprefix("/v1/models/")))
        else:
            self._send_error_json(404, f"Unknown path: {self.command} {path}")

    def _answer(self, kind: str, body: Any) -> None:
        item, delay = self.fake._next(kind)
        if delay and not self._wait(delay):
            self._hang_up()  # the client timed out, or we are stopping
            return
        if isinstance(item, _Error):
            self._send_error_json(item.status, item.message, item.headers)
            return
        if isinstance(item, _Malformed):
            self._send(item.status, item.body, item.content_type)
            return
        if not isinstance(body, dict):
            self._send_error_json(400, "Request body must be a JSON object.")
            return
        if kind == "chat":
            assert item is None or isinstance(item, _Chat | _Stream)
            self._chat(item, body)
        elif kind == "embeddings":
            assert item is None or isinstance(item, _Embeddings)
            self._embeddings(item, body)
        else:
            assert item is None or isinstance(item, _Images)
            self._images(item, body)

    # endpoints

    def _chat(self, item: _Chat | _Stream | None, body: dict[str, Any]) -> None:
        if body.get("stream"):
            self._stream(_as_stream(item), body)
            return
        chat = _as_chat(item)
        message: dict[str, Any] = {"role": "assistant", "content": chat.text, "refusal": None}
        if chat.tool_calls:
            message["tool_calls"] = list(chat.tool_calls)
        self._send_json(
            200,
            {
                "id": self.fake._new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": chat.model or body.get("model") or DEFAULT_MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": chat.finish_reason,
                    }
                ],
                "usage": _usage(chat.prompt_tokens, chat.completion_tokens),
            },
        )

    def _stream(self, plan: _Stream, body: dict[str, Any]) -> None:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base = {
            "id": self.fake._new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": plan.model or body.get("model") or DEFAULT_MODEL,
        }

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", self.fake._new_id("req"))
        try:
            self.end_headers()
            cut = plan.deltas if plan.cut_after is None else plan.deltas[: plan.cut_after]
            for i, delta in enumerate(cut):
                if i and not self._pause(plan.chunk_delay):
                    return
                self._event({**base, "choices": [choice(delta)]})
            if plan.cut_after is not None:
                self._hang_up()  # mid-body, without the terminating chunk: a broken stream
                return
            if not self._pause(plan.chunk_delay):
                return
            self._event({**base, "choices": [choice({}, plan.finish_reason)]})
            if include_usage:
                completion = plan.completion_tokens
                if completion is None:
                    completion = len(plan.deltas)
                usage = _usage(plan.prompt_tokens, completion)
                self._event({**base, "choices": [], "usage": usage})
            # [DONE] and the terminating chunk go out in one write, so a client that hangs up
            # right after reading [DONE] can never make a later write fail.
            self._write_chunk(b"data: [DONE]\n\n", last=True)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.fake._note_disconnect()
            self.close_connection = True

    def _pause(self, seconds: float) -> bool:
        """Between stream chunks: False (and counted) if the client hung up meanwhile."""
        if seconds <= 0 or self._wait(seconds):
            return True
        self.fake._note_disconnect()
        self._hang_up()
        return False

    def _event(self, obj: dict[str, Any]) -> None:
        self._write_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def _write_chunk(self, payload: bytes, *, last: bool = False) -> None:
        frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
        self.wfile.write(frame + (b"0\r\n\r\n" if last else b""))  # unbuffered: one send

    def _embeddings(self, item: _Embeddings | None, body: dict[str, Any]) -> None:
        inputs = _embedding_inputs(body.get("input", ""))
        if item is not None and item.vectors is not None:
            vectors = [list(v) for v in item.vectors]
        else:
            vectors = [fake_embedding(text) for text in inputs]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, vector in enumerate(vectors):
            embedding: list[float] | str = vector
            if as_base64:  # what the SDK asks for by default: little-endian float32
                packed = struct.pack(f"<{len(vector)}f", *vector)
                embedding = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, len(text.split())) for text in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or DEFAULT_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _images(self, item: _Images | None, body: dict[str, Any]) -> None:
        requested_n = body.get("n")
        if item is None:
            image = DEFAULT_PNG
            url = None
            if body.get("response_format") == "url":
                url = self.fake.serve_file(f"/files/{secrets.token_hex(8)}.png", image)
            count = 1
        else:
            image, url, count = item.data, item.url, item.n
        if isinstance(requested_n, int) and requested_n > 0:
            count = requested_n
        if url is not None:
            entry = {"url": url}
        else:
            entry = {"b64_json": base64.b64encode(image).decode("ascii")}
        self._send_json(
            200, {"created": int(time.time()), "data": [dict(entry) for _ in range(count)]}
        )


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "fake"}


def main(argv: list[str] | None = None) -> int:
    """Serve default replies until Ctrl-C, for demos without an API key."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server",
        description="Serve a fake OpenAI-compatible API with default replies.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    # A shell starts background jobs with SIGINT ignored, and Python keeps that; restore it
    # (and treat SIGTERM alike) so `kill -INT`/`kill` from a demo script stops us cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with FakeOpenAI(args.host, args.port, verbose=args.verbose) as fake:
        print(fake.base_url, flush=True)
        print("Serving default replies; press Ctrl-C to stop.", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
