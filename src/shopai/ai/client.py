"""The one entry point features use: `AIClient`.

Each call names a feature ("suggest", "chat", "images", "embeddings"); the
settings decide that feature's backend, model, time budget and retries. Every
call that reaches a model, successful or not, produces one `UsageEvent`.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema import SchemaError as InvalidSchema
from jsonschema import ValidationError as SchemaMismatch

from .breaker import CircuitBreaker, State
from .download import download_image
from .embeddings import LocalEmbedder, shared_embedder
from .errors import AIBadResponse, AIConfigError, AIError, AIRequestRefused, AIUnavailable
from .local_backend import LocalModelConfig, default_gguf_path, local_server
from .openai_backend import OpenAIBackend
from .renderer import RENDERER_NAME, parse_size, render_product_card
from .retry import call_with_retries
from .settings import AISettings, Feature, display_url
from .types import (
    ChatResult,
    GeneratedImage,
    Message,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
    UsageEvent,
    UsageReport,
)

T = TypeVar("T")
UsageSink = Callable[[UsageEvent], None]
FREE_BACKENDS = ("local", "onnx", "renderer")
MAX_IMAGES = 4
REPAIR_PROMPT = (
    "Your previous reply was not valid JSON for the required schema ({error}). "
    "Reply again with only the JSON object, nothing else."
)


def estimate_tokens(messages: list[Message]) -> int:
    """A rough prompt size (~4 characters a token) for when a server never reported one."""
    return sum(len(str(message.get("content") or "")) for message in messages) // 4 + 1


@dataclass
class _StreamState:
    """What a stream's finalizer needs; kept apart so the finalizer holds no reference
    to the stream itself (which would keep it alive forever)."""

    prompt_estimate: int
    closed: bool = False
    completion_estimate: int = 0
    usage: Usage | None = None
    error: Exception | None = None


def _finish_stream(
    state: _StreamState, raw_stream: Any, on_finish: Callable[[Usage, Exception | None], None]
) -> None:
    state.closed = True
    try:
        raw_stream.close()
    finally:
        # Servers report usage last; a cancelled stream never gets there, so estimate.
        on_finish(
            state.usage or Usage(state.prompt_estimate, state.completion_estimate), state.error
        )


class ChatStream(Iterator[StreamEvent]):
    """The events of a streamed reply, in order: `TextDelta`s, one `ToolCallEvent` per
    whole tool call, `UsageReport`, and `Finished` last. Callers that only want the text
    iterate `text_deltas()` instead; the tool calls, usage and finish reason stay
    readable as attributes either way.

    `close()`, leaving a `with` block, or simply dropping the object stops reading and
    closes the HTTP response, which cancels generation upstream; usage is recorded
    exactly once in every case (as soon as `Finished` arrives, for a complete stream)."""

    def __init__(
        self,
        events: Iterator[StreamEvent],
        raw_stream: Any,
        on_finish: Callable[[Usage, Exception | None], None],
        prompt_estimate: int,
    ) -> None:
        self._events = events
        self._state = _StreamState(prompt_estimate)
        self._finalizer = weakref.finalize(self, _finish_stream, self._state, raw_stream, on_finish)
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []

    @property
    def usage(self) -> Usage | None:
        return self._state.usage

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._state.closed:
            raise StopIteration
        try:
            event = next(self._events)
        except StopIteration:
            self._finalizer()
            raise
        except AIError as exc:
            self._state.error = exc
            self._finalizer()
            raise
        self._note(event)
        return event

    def _note(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._state.completion_estimate += 1  # about a token per delta
        elif isinstance(event, ToolCallEvent):
            self.tool_calls.append(event.call)
            self._state.completion_estimate += len(json.dumps(event.call.arguments)) // 4 + 1
        elif isinstance(event, UsageReport):
            self._state.usage = event.usage
        else:
            self.finish_reason = event.reason
            self._finalizer()  # nothing follows `Finished`: record the usage now

    def text_deltas(self) -> Iterator[str]:
        """Only the text, as it arrives; reads the stream to its end like iterating it."""
        for event in self:
            if isinstance(event, TextDelta):
                yield event.text

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AIClient:
    def __init__(self, settings: AISettings, *, on_usage: UsageSink | None = None) -> None:
        self.settings = settings
        self._on_usage = on_usage
        self._lock = threading.Lock()
        self._backends: dict[str, OpenAIBackend] = {}
        self._breakers: dict[tuple[str, Feature], CircuitBreaker] = {}
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------

    def backend(self, name: Feature) -> tuple[OpenAIBackend, CircuitBreaker]:
        """The server and breaker of a feature, ready to use: the embedded server is
        started here, before any time budget starts counting.

        Features on one server share its connection pool but each has its own breaker:
        their budgets differ (3 s suggestions, 60 s chat), so timeouts of one say little
        about whether the other can still be served."""
        if self._closed:
            raise AIUnavailable("the AI client has been closed")
        key = self._backend_key(name)
        with self._lock:
            backend = self._backends.get(key) or self._new_backend(key, name)
            breaker = self._breakers.get((key, name))
            if breaker is None:
                breaker = self._breakers[key, name] = CircuitBreaker(
                    f"{backend.label} ({name})",
                    failure_threshold=self.settings.breaker_failures,
                    reset_timeout=self.settings.breaker_reset_seconds,
                )
        backend.client  # noqa: B018 - creates the SDK client (and starts a local server) now
        return backend, breaker

    def _backend_key(self, name: Feature) -> str:
        feature = self.settings.feature(name)
        return "local" if feature.backend == "local" else f"openai:{feature.base_url}"

    def breaker_state(self, name: Feature) -> State | None:
        """The feature's circuit state, or None before its first call. Only reads:
        health checks call it, and must neither spend tokens nor start a model server."""
        if self.settings.feature(name).backend in ("onnx", "renderer"):
            return None  # in-process: no server, no breaker
        with self._lock:
            breaker = self._breakers.get((self._backend_key(name), name))
        return None if breaker is None else breaker.state

    def _new_backend(self, key: str, name: Feature) -> OpenAIBackend:
        """Called with the lock held; the SDK client itself is created lazily."""
        feature = self.settings.feature(name)
        if feature.backend == "local":
            base_url: str | Callable[[], str] | None = local_server(
                self.local_model_config()
            ).base_url
            label = "local model"
        else:
            base_url, label = feature.base_url, display_url(feature.base_url)
        backend = self._backends[key] = OpenAIBackend(label, base_url, self.settings.api_key)
        return backend

    def local_model_config(self) -> LocalModelConfig:
        return LocalModelConfig(
            model_path=self.settings.local_model_path or default_gguf_path(),
            context=self.settings.local_context,
            threads=self.settings.local_threads,
            parallel=self.settings.local_parallel,
        )

    def _record(
        self,
        name: Feature,
        started: float,
        usage: Usage,
        who: str | None,
        error: Exception | None = None,
    ) -> None:
        if self._on_usage is None:
            return
        feature = self.settings.feature(name)
        cost: float | None = 0.0
        if feature.backend not in FREE_BACKENDS:
            price = self.settings.prices.get(feature.model)
            cost = (
                price.cost(usage.prompt_tokens, usage.completion_tokens, usage.images)
                if price
                else None
            )
        self._on_usage(
            UsageEvent(
                feature=name,
                backend=feature.backend,
                model=feature.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                images=usage.images,
                latency_ms=(time.perf_counter() - started) * 1000,
                estimated_cost=cost,
                who=who,
                ok=error is None,
                error=None if error is None else f"{type(error).__name__}: {error}"[:500],
            )
        )

    def _call(
        self,
        name: Feature,
        who: str | None,
        call: Callable[[OpenAIBackend, float], tuple[T, Usage]],
        budget: float | None = None,
    ) -> T:
        """Run `call(backend, remaining_seconds)` under the feature's retry policy and
        breaker, recording one usage event for the whole call."""
        feature = self.settings.feature(name)
        started = time.perf_counter()
        try:
            backend, breaker = self.backend(name)
            result, usage = call_with_retries(
                lambda remaining: call(backend, remaining),
                timeout=feature.timeout if budget is None else budget,
                max_retries=feature.max_retries,
                breaker=breaker,
            )
        except AIError as exc:
            self._record(name, started, Usage(), who, exc)
            raise
        self._record(name, started, usage, who)
        return result

    # -- text -----------------------------------------------------------------------------

    def chat(
        self,
        feature: Feature,
        messages: list[Message],
        *,
        who: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        budget: float | None = None,
    ) -> ChatResult:
        """One reply. `budget` overrides the feature's time budget (seconds)."""
        model = self.settings.feature(feature).model

        def call(backend: OpenAIBackend, remaining: float) -> tuple[ChatResult, Usage]:
            reply = backend.chat(
                model,
                messages,
                timeout=remaining,
                max_tokens=max_tokens,
                temperature=temperature,
                tools=tools,
                response_format=response_format,
            )
            return reply, reply.usage

        return self._call(feature, who, call, budget)

    def stream(
        self,
        feature: Feature,
        messages: list[Message],
        *,
        who: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        frequency_penalty: float | None = None,
        stop: list[str] | None = None,
    ) -> ChatStream:
        """Open a streamed reply; reading it stays within the feature's time budget.
        Retries cover opening the stream, never a stream already delivering text
        (the shopper would see it twice). `frequency_penalty` and `stop` are the
        OpenAI parameters (llama.cpp's server takes them too): small models loop
        without the first and run on into an imitation of their prompt without the
        second."""
        settings = self.settings.feature(feature)
        started = time.perf_counter()
        try:
            backend, breaker = self.backend(feature)
            raw = call_with_retries(
                lambda remaining: backend.open_stream(
                    settings.model,
                    messages,
                    timeout=remaining,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    tools=tools,
                    frequency_penalty=frequency_penalty,
                    stop=stop,
                ),
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                breaker=breaker,
            )
        except AIError as exc:
            self._record(feature, started, Usage(), who, exc)
            raise
        return ChatStream(
            backend.iter_stream(raw),
            raw,
            lambda usage, error: self._record(feature, started, usage, who, error),
            estimate_tokens(messages),
        )

    def structured(
        self,
        feature: Feature,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        name: str = "result",
        strict: bool = True,
        who: str | None = None,
        max_tokens: int | None = None,
        budget: float | None = None,
    ) -> Any:
        """A JSON value valid against `schema`, within one time budget (the feature's, or
        `budget` seconds: background jobs may wait longer than a shopper): one repair round
        trip, then `AIBadResponse`. `strict=True` needs a schema in OpenAI's strict subset
        (every property required, `additionalProperties: false`)."""
        try:
            Draft202012Validator.check_schema(schema)
        except InvalidSchema as exc:
            raise AIConfigError(f"invalid JSON schema for {name!r}: {exc.message}") from exc
        validator = Draft202012Validator(schema)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict},
        }
        seconds = self.settings.feature(feature).timeout if budget is None else budget
        deadline = time.monotonic() + seconds
        conversation = list(messages)
        for attempt in range(2):
            reply = self.chat(
                feature,
                conversation,
                who=who,
                max_tokens=max_tokens,
                response_format=response_format,
                budget=max(0.0, deadline - time.monotonic()),
            )
            try:
                value = json.loads(reply.text)
                validator.validate(value)
            except (json.JSONDecodeError, SchemaMismatch) as exc:
                problem = exc.message if isinstance(exc, SchemaMismatch) else "not JSON"
                if attempt == 1:
                    raise AIBadResponse(
                        f"reply did not match the schema after one repair attempt: {problem}"
                    ) from exc
                conversation += [
                    {"role": "assistant", "content": reply.text[:4000]},
                    {"role": "user", "content": REPAIR_PROMPT.format(error=problem[:300])},
                ]
            else:
                return value
        raise AssertionError("unreachable")

    # -- vectors and images ---------------------------------------------------------------

    def embed(
        self, texts: list[str], *, who: str | None = None, budget: float | None = None
    ) -> list[list[float]]:
        """One vector per text. `budget` overrides the feature's time budget (seconds)
        for servers; the embedded model runs in this process and is not interrupted."""
        if not texts:
            return []
        feature = self.settings.feature("embeddings")
        if feature.backend == "onnx":
            started = time.perf_counter()
            try:
                embedder = self._local_embedder()
                vectors = embedder.embed(texts)
            except AIError as exc:
                self._record("embeddings", started, Usage(), who, exc)
                raise
            self._record("embeddings", started, Usage(embedder.token_count(texts)), who)
            return vectors

        def call(backend: OpenAIBackend, remaining: float) -> tuple[list[list[float]], Usage]:
            vectors, tokens = backend.embed(feature.model, texts, timeout=remaining)
            return vectors, Usage(prompt_tokens=tokens)

        return self._call("embeddings", who, call, budget)

    def _local_embedder(self) -> LocalEmbedder:
        return shared_embedder(self.settings.local_threads)

    def generate_images(
        self,
        prompt: str,
        *,
        size: str = "1024x1024",
        n: int = 1,
        title: str = "",
        subtitle: str = "",
        seed: int | None = None,
        who: str | None = None,
    ) -> list[GeneratedImage]:
        """`n` images for `prompt`. The offline renderer draws `title`/`subtitle` instead.

        Images that come back as URLs are downloaded after the generation is recorded
        (it is paid for either way) and within what is left of the feature's budget."""
        feature = self.settings.feature("images")
        if not 1 <= n <= MAX_IMAGES:
            raise AIRequestRefused(f"between 1 and {MAX_IMAGES} images per request, not {n}")
        if not (prompt.strip() or title.strip()):
            raise AIRequestRefused("an image needs a prompt")
        try:
            dimensions = parse_size(size)
        except ValueError as exc:
            raise AIRequestRefused(str(exc)) from None
        base_seed = seed or 0
        if feature.backend == "renderer":
            started = time.perf_counter()
            images = [
                GeneratedImage(
                    render_product_card(
                        title or prompt, subtitle, size=dimensions, seed=base_seed + i
                    ),
                    "renderer",
                    RENDERER_NAME,
                    prompt,
                    base_seed + i,
                )
                for i in range(n)
            ]
            self._record("images", started, Usage(images=n), who)
            return images

        def call(backend: OpenAIBackend, remaining: float) -> tuple[list[bytes | str], Usage]:
            results = backend.images(
                feature.model,
                prompt,
                size=size,
                n=n,
                timeout=remaining,
                max_bytes=self.settings.download_max_bytes,
            )
            return results, Usage(images=len(results))

        deadline = time.monotonic() + feature.timeout
        results = self._call("images", who, call)
        return [
            GeneratedImage(
                item if isinstance(item, bytes) else self._download(item, deadline),
                "openai",
                feature.model,
                prompt,
                seed,
            )
            for item in results
        ]

    def _download(self, url: str, deadline: float) -> bytes:
        return download_image(
            url,
            max_bytes=self.settings.download_max_bytes,
            timeout=max(0.1, deadline - time.monotonic()),
            allow_private=self.settings.allow_private_urls,
        )

    def close(self) -> None:
        self._closed = True
        for backend in self._backends.values():
            backend.close()
