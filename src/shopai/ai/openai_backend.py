"""OpenAI and every OpenAI-compatible server (Ollama, vLLM, llama.cpp, LocalAI), via the SDK.

The SDK's retries are off: `retry.call_with_retries` is the only retry loop.
Its exceptions are mapped to the few in `errors`, so callers never import openai.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from .deadline import DeadlineTransport, deadline
from .errors import (
    AIBadResponse,
    AIError,
    AIRateLimited,
    AIRequestRefused,
    AITimeout,
    AIUnavailable,
)
from .keepalive import StreamFinishingTransport, finishes_streams
from .types import (
    ChatResult,
    Finished,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
    UsageReport,
)

CONNECT_TIMEOUT = 5.0
POOL_LIMITS = httpx2.Limits(max_connections=50, max_keepalive_connections=10)


def retry_after_seconds(headers: httpx2.Headers | None) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (delta-seconds or an HTTP date)."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return error.get("code") or error.get("type")


@contextlib.contextmanager
def mapped_errors(label: str) -> Iterator[None]:
    """Translate SDK and transport exceptions into the app's AI errors."""
    try:
        yield
    except AIError:
        raise
    except openai.APITimeoutError as exc:
        raise AITimeout(f"{label} timed out") from exc
    except openai.RateLimitError as exc:
        if _error_code(exc) == "insufficient_quota":  # billing, not load: waiting won't help
            raise AIRequestRefused(f"{label} says the account is out of quota") from exc
        raise AIRateLimited(
            f"{label} is rate limiting us", retry_after_seconds(exc.response.headers)
        ) from exc
    except openai.APIStatusError as exc:
        if exc.status_code == 408:
            raise AITimeout(f"{label} timed out (HTTP 408)") from exc
        if exc.status_code == 409 or exc.status_code >= 500:
            raise AIUnavailable(f"{label} answered HTTP {exc.status_code}") from exc
        raise AIRequestRefused(f"{label} refused the request (HTTP {exc.status_code})") from exc
    except openai.APIConnectionError as exc:
        raise AIUnavailable(f"{label} is unreachable") from exc
    except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
        raise AIBadResponse(f"{label} sent a malformed reply") from exc
    except openai.APIError as exc:  # the rest: an error event in the middle of a stream
        raise AIUnavailable(f"{label} reported an error mid-reply") from exc
    except httpx2.TimeoutException as exc:
        raise AITimeout(f"{label} timed out") from exc
    except httpx2.HTTPError as exc:
        raise AIBadResponse(f"{label} broke off the reply ({type(exc).__name__})") from exc


@contextlib.contextmanager
def _broken_stream_is_bad_response(label: str) -> Iterator[None]:
    """Once text is flowing, a dropped connection means a cut-off reply, not an outage."""
    try:
        yield
    except (openai.APIConnectionError, httpx2.TransportError) as exc:
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            raise
        raise AIBadResponse(f"{label} broke off the reply ({type(exc).__name__})") from exc


@contextlib.contextmanager
def _parsing(label: str) -> Iterator[None]:
    """Around a call and the reading of its reply: the SDK and we raise these when a
    server's reply has the wrong shape, which is the server's fault, not a bug here."""
    try:
        yield
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise AIBadResponse(f"{label} sent a reply of an unexpected shape") from exc


def _parsed(reply: Any, label: str) -> Any:
    """The SDK returns a bare str when the body was not JSON (a proxy's error page)."""
    if isinstance(reply, str | bytes) or reply is None:
        raise AIBadResponse(f"{label} sent a reply that is not JSON")
    return reply


def _timeout(seconds: float) -> httpx2.Timeout:
    """A call's timeouts, passed with the request: `client.with_options` would build a
    copy of the whole client for every call."""
    return httpx2.Timeout(seconds, connect=min(CONNECT_TIMEOUT, seconds))


def _sdk_messages(messages: list[Message]) -> list[ChatCompletionMessageParam]:
    """`Message` is one loose TypedDict for every role; the SDK types each role apart.
    The shapes agree, and the server validates what we send."""
    return cast("list[ChatCompletionMessageParam]", messages)


def _generation_options(max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    """Only what the caller set: reasoning models reject a temperature, and
    `max_completion_tokens` is the name current OpenAI models (and llama.cpp) accept."""
    options: dict[str, Any] = {}
    if max_tokens is not None:
        options["max_completion_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    return options


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(raw.prompt_tokens or 0, raw.completion_tokens or 0)


def _tool_arguments(raw: str | None, label: str) -> dict[str, Any]:
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise AIBadResponse(f"{label} sent a tool call with malformed arguments") from exc
    if not isinstance(arguments, dict):
        raise AIBadResponse(f"{label} sent tool call arguments that are not an object")
    return arguments


def _tool_calls(message: Any, label: str) -> list[ToolCall]:
    return [
        ToolCall(call.id, call.function.name, _tool_arguments(call.function.arguments, label))
        for call in message.tool_calls or []
    ]


class _ToolCallAssembler:
    """Streamed tool calls arrive in fragments keyed by index: the first carries the id
    and name, the rest pieces of the JSON arguments. They are only known to be whole
    once the stream has ended; only then are the arguments parsed."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._parts: dict[int, tuple[list[str], list[str], list[str]]] = {}

    def add(self, fragments: list[dict[str, Any]] | None) -> None:
        for fragment in fragments or []:
            ids, names, arguments = self._parts.setdefault(fragment["index"], ([], [], []))
            if fragment.get("id"):
                ids.append(fragment["id"])
            function = fragment.get("function")
            if function is not None:
                if function.get("name"):
                    names.append(function["name"])
                arguments.append(function.get("arguments") or "")

    def complete(self) -> list[ToolCall]:
        """Every call received, in index order."""
        return [self._call(*self._parts[index]) for index in sorted(self._parts)]

    def _call(self, ids: list[str], names: list[str], arguments: list[str]) -> ToolCall:
        # The id and name come once; some servers repeat them on every fragment.
        if not ids or not names:
            raise AIBadResponse(f"{self.label} sent a tool call without an id or a name")
        return ToolCall(ids[0], names[0], _tool_arguments("".join(arguments), self.label))


def _stream_usage(raw: dict[str, Any]) -> Usage:
    return Usage(raw.get("prompt_tokens") or 0, raw.get("completion_tokens") or 0)


def _read_chunk(
    chunk: object, tool_calls: _ToolCallAssembler
) -> tuple[str, str | None, Usage | None]:
    """(text, finish reason, usage) of one streamed chunk (its JSON); tool call fragments
    go to `tool_calls`, which assembles them. A chunk of another shape raises one of the
    errors `_parsing` turns into `AIBadResponse`."""
    if not isinstance(chunk, dict):
        raise TypeError("a streamed chunk is not a JSON object")
    raw_usage = chunk.get("usage")
    usage = _stream_usage(raw_usage) if raw_usage else None
    choices = chunk.get("choices")
    if not choices:
        return "", None, usage
    choice = choices[0]
    delta = choice.get("delta")
    if delta is None:
        return "", choice.get("finish_reason"), usage
    tool_calls.add(delta.get("tool_calls"))
    return delta.get("content") or "", choice.get("finish_reason"), usage


# Streamed chunks are read as the JSON they are, through the SDK's own stream (its SSE
# decoding, error events and closing); `object` is the SDK's "as decoded" type. Its
# `chat.completions.create` would build a pydantic model of every chunk, which cost
# more CPU than everything else the app does while an answer streams (and, with
# several answers at once, delays the first words of the others), and walk the whole
# request through its type-driven transform.
ChunkStream = openai.Stream[object]


class OpenAIBackend:
    """One OpenAI-compatible server. `base_url` may be a callable, resolved on first use,
    so the embedded server is only started when a feature actually needs it."""

    def __init__(
        self,
        label: str,
        base_url: str | Callable[[], str] | None,
        api_key: str | None,
        *,
        finish_streams: bool | None = None,
    ) -> None:
        """`finish_streams` overrides whether streamed replies keep their connection
        (`keepalive.finishes_streams`: for https servers)."""
        self.label = label
        self._base_url = base_url
        self._finish_streams = finish_streams
        self._api_key = api_key or "not-needed"  # local servers ignore it; the SDK wants one
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client, created once (starting the embedded server if that is the target)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    base_url = self._base_url() if callable(self._base_url) else self._base_url
                    http: httpx2.BaseTransport = httpx2.HTTPTransport(limits=POOL_LIMITS)
                    finish = self._finish_streams
                    if finishes_streams(base_url) if finish is None else finish:
                        http = StreamFinishingTransport(http)
                    transport = DeadlineTransport(http)
                    self._client = openai.OpenAI(
                        api_key=self._api_key,
                        base_url=base_url,
                        max_retries=0,
                        http_client=openai.DefaultHttpx2Client(transport=transport),
                    )
        return self._client

    def chat(
        self,
        model: str,
        messages: list[Message],
        *,
        timeout: float,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        options = _generation_options(max_tokens, temperature)
        if tools:
            options["tools"] = tools
        if response_format:
            options["response_format"] = response_format
        with mapped_errors(self.label), _parsing(self.label), deadline(timeout):
            reply = _parsed(
                self.client.chat.completions.create(
                    model=model,
                    messages=_sdk_messages(messages),
                    timeout=_timeout(timeout),
                    **options,
                ),
                self.label,
            )
        with _parsing(self.label):
            if not reply.choices:
                raise AIBadResponse(f"{self.label} returned no choices")
            choice = reply.choices[0]
            return ChatResult(
                text=choice.message.content or "",
                model=model,
                usage=_usage(reply.usage),
                finish_reason=choice.finish_reason,
                tool_calls=_tool_calls(choice.message, self.label),
            )

    def open_stream(
        self,
        model: str,
        messages: list[Message],
        *,
        timeout: float,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        frequency_penalty: float | None = None,
        stop: list[str] | None = None,
    ) -> ChunkStream:
        """Open the SSE stream; reading it (`iter_stream`) stays within the same budget."""
        options = _generation_options(max_tokens, temperature)
        options["stream_options"] = {"include_usage": True}
        if tools:
            options["tools"] = tools
        if frequency_penalty:
            options["frequency_penalty"] = frequency_penalty
        if stop:
            options["stop"] = stop
        body = {"model": model, "messages": messages, "stream": True, **options}
        with mapped_errors(self.label), _parsing(self.label), deadline(timeout):
            return self.client.post(
                "/chat/completions",
                body=body,
                cast_to=ChatCompletion,
                options={"timeout": _timeout(timeout)},
                stream=True,
                stream_cls=ChunkStream,
            )

    def iter_stream(self, stream: ChunkStream) -> Iterator[StreamEvent]:
        """Text deltas as they arrive; then, once the server has ended the stream, whole
        tool calls, usage and `Finished`, in that order whatever order the server sent them
        in. A stream that ends without a finish reason was cut off: `AIBadResponse`."""
        finish_reason: str | None = None
        usage: Usage | None = None
        tool_calls = _ToolCallAssembler(self.label)
        with mapped_errors(self.label), _broken_stream_is_bad_response(self.label):
            for chunk in stream:
                with _parsing(self.label):
                    text, reason, chunk_usage = _read_chunk(chunk, tool_calls)
                finish_reason = finish_reason or reason
                usage = chunk_usage or usage
                if text:
                    yield TextDelta(text)
        if finish_reason is None:
            raise AIBadResponse(f"{self.label} broke off the reply before it finished")
        for call in tool_calls.complete():
            yield ToolCallEvent(call)
        if usage is not None:
            yield UsageReport(usage)
        yield Finished(finish_reason)

    def embed(
        self, model: str, texts: list[str], *, timeout: float
    ) -> tuple[list[list[float]], int]:
        with mapped_errors(self.label), _parsing(self.label), deadline(timeout):
            reply = _parsed(
                self.client.embeddings.create(model=model, input=texts, timeout=_timeout(timeout)),
                self.label,
            )
        with _parsing(self.label):
            data = reply.data if isinstance(reply.data, list) else []
            vectors = [item.embedding for item in sorted(data, key=lambda d: d.index)]
            if len(vectors) != len(texts):
                raise AIBadResponse(
                    f"{self.label} returned {len(vectors)} vectors for {len(texts)} texts"
                )
            return vectors, reply.usage.prompt_tokens if reply.usage else 0

    def images(
        self, model: str, prompt: str, *, size: str, n: int, timeout: float, max_bytes: int
    ) -> list[bytes | str]:
        """Each image as bytes (base64 replies) or as a URL still to download: downloading
        is the caller's separate, non-retried step, since the images are already paid for.
        An inline image over `max_bytes` is refused before it is decoded."""
        with mapped_errors(self.label), _parsing(self.label), deadline(timeout):
            reply = _parsed(
                self.client.images.generate(
                    model=model, prompt=prompt, size=size, n=n, timeout=_timeout(timeout)
                ),
                self.label,
            )
        with _parsing(self.label):
            items = reply.data if isinstance(reply.data, list) else []
            if not items:
                raise AIBadResponse(f"{self.label} returned no images")
            images: list[bytes | str] = []
            for item in items:
                if item.b64_json:
                    if len(item.b64_json) > (max_bytes * 4) // 3 + 4:
                        raise AIBadResponse(
                            f"{self.label} sent an image over {max_bytes // (1024 * 1024)} MB"
                        )
                    try:
                        images.append(base64.b64decode(item.b64_json, validate=True))
                    except binascii.Error as exc:
                        raise AIBadResponse(
                            f"{self.label} sent an image that is not base64"
                        ) from exc
                elif item.url:
                    images.append(item.url)
                else:
                    raise AIBadResponse(f"{self.label} returned an image with neither data nor URL")
            return images

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
