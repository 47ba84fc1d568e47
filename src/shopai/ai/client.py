"""The one entry point features use: `AIClient`.

Each call names a feature ("suggest", "chat", "images", "embeddings"); the
settings decide that feature's backend, model, timeout and retries. Every call,
successful or not, produces one `UsageEvent` for the ledger.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema import ValidationError as SchemaError

from .breaker import CircuitBreaker
from .embeddings import LocalEmbedder
from .errors import AIBadResponse, AIConfigError, AIError
from .local_backend import LocalModelConfig, default_model_path, local_server
from .openai_backend import OpenAIBackend
from .renderer import RENDERER_NAME, parse_size, render_product_card
from .retry import call_with_retries
from .settings import AISettings, Feature, FeatureSettings
from .types import ChatResult, GeneratedImage, Message, Usage, UsageEvent

UsageSink = Callable[[UsageEvent], None]
FREE_BACKENDS = ("local", "onnx", "renderer")
REPAIR_PROMPT = (
    "Your previous reply was not valid JSON for the required schema ({error}). "
    "Reply again with only the JSON object, nothing else."
)


class ChatStream(Iterator[str]):
    """Text deltas of a streamed reply. `close()` (or leaving a `with` block) stops
    reading and closes the HTTP response, which cancels generation upstream."""

    def __init__(
        self,
        backend: OpenAIBackend,
        raw_stream: Any,
        on_finish: Callable[[Usage, str | None, Exception | None], None],
    ) -> None:
        self._raw = raw_stream
        self._chunks = backend.iter_stream(raw_stream)
        self._on_finish = on_finish
        self._closed = False
        self._deltas = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        while True:
            if self._closed:
                raise StopIteration
            try:
                text, finish_reason, usage = next(self._chunks)
            except StopIteration:
                self._finish(None)
                raise
            except AIError as exc:
                self._finish(exc)
                raise
            if usage is not None:
                self.usage = usage
            if finish_reason is not None:
                self.finish_reason = finish_reason
            if text:
                self._deltas += 1
                return text

    def close(self) -> None:
        if not self._closed:
            self._finish(None)

    def _finish(self, error: Exception | None) -> None:
        self._closed = True
        self._raw.close()
        # Servers send usage last; a cancelled stream never gets there, so count deltas.
        usage = self.usage or Usage(completion_tokens=self._deltas)
        self._on_finish(usage, self.finish_reason, error)

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
        self._breakers: dict[str, CircuitBreaker] = {}
        self._embedder: LocalEmbedder | None = None

    # -- plumbing -------------------------------------------------------------------------

    def _backend_key(self, feature: FeatureSettings) -> str:
        return "local" if feature.backend == "local" else f"openai:{feature.base_url or 'default'}"

    def backend(self, name: Feature) -> tuple[OpenAIBackend, CircuitBreaker]:
        """The server and breaker for a text/images/embeddings feature (one per server)."""
        feature = self.settings.feature(name)
        key = self._backend_key(feature)
        with self._lock:
            if key not in self._backends:
                if feature.backend == "local":
                    server = local_server(self._local_config())
                    base_url: str | Callable[[], str] | None = server.base_url
                    label = "local model"
                else:
                    base_url, label = feature.base_url, _display_url(feature.base_url)
                self._backends[key] = OpenAIBackend(
                    label,
                    base_url,
                    self.settings.api_key,
                    download_max_bytes=self.settings.download_max_bytes,
                    allow_private_urls=self.settings.allow_private_urls,
                )
                self._breakers[key] = CircuitBreaker(
                    label,
                    failure_threshold=self.settings.breaker_failures,
                    reset_timeout=self.settings.breaker_reset_seconds,
                )
            return self._backends[key], self._breakers[key]

    def _local_config(self) -> LocalModelConfig:
        return LocalModelConfig(
            model_path=self.settings.local_model_path or default_model_path(),
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
        if feature.backend in FREE_BACKENDS:
            cost: float | None = 0.0
        else:
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
        self, name: Feature, who: str | None, call: Callable[[OpenAIBackend, float], Any]
    ) -> Any:
        """Run `call(backend, remaining_seconds)` under the feature's retry policy and
        breaker, and record usage from whatever it returns (`.usage` when present)."""
        feature = self.settings.feature(name)
        backend, breaker = self.backend(name)
        started = time.perf_counter()
        try:
            result = call_with_retries(
                lambda remaining: call(backend, remaining),
                timeout=feature.timeout,
                max_retries=feature.max_retries,
                breaker=breaker,
            )
        except AIError as exc:
            self._record(name, started, Usage(), who, exc)
            raise
        self._record(name, started, getattr(result, "usage", Usage()), who)
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
    ) -> ChatResult:
        model = self.settings.feature(feature).model
        return self._call(
            feature,
            who,
            lambda backend, remaining: backend.chat(
                model,
                messages,
                timeout=remaining,
                max_tokens=max_tokens,
                temperature=temperature,
                tools=tools,
                response_format=response_format,
            ),
        )

    def stream(
        self,
        feature: Feature,
        messages: list[Message],
        *,
        who: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatStream:
        """Open a streamed reply. Retries cover opening the stream, never a stream already
        delivering text (the shopper would see it twice)."""
        settings = self.settings.feature(feature)
        backend, breaker = self.backend(feature)
        started = time.perf_counter()
        try:
            raw = call_with_retries(
                lambda remaining: backend.open_stream(
                    settings.model,
                    messages,
                    timeout=remaining,
                    max_tokens=max_tokens,
                    temperature=temperature,
                ),
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                breaker=breaker,
            )
        except AIError as exc:
            self._record(feature, started, Usage(), who, exc)
            raise
        return ChatStream(
            backend,
            raw,
            lambda usage, _reason, error: self._record(feature, started, usage, who, error),
        )

    def structured(
        self,
        feature: Feature,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        name: str = "result",
        who: str | None = None,
        max_tokens: int | None = None,
    ) -> Any:
        """A JSON value valid against `schema`. One repair round trip, then `AIBadResponse`."""
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
        conversation = list(messages)
        for attempt in range(2):
            reply = self.chat(
                feature,
                conversation,
                who=who,
                max_tokens=max_tokens,
                response_format=response_format,
            )
            try:
                value = json.loads(reply.text)
                validator.validate(value)
            except (json.JSONDecodeError, SchemaError) as exc:
                problem = exc.message if isinstance(exc, SchemaError) else "not JSON"
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

    def embed(self, texts: list[str], *, who: str | None = None) -> list[list[float]]:
        feature = self.settings.feature("embeddings")
        if feature.backend == "onnx":
            started = time.perf_counter()
            embedder = self._local_embedder()
            try:
                vectors = embedder.embed(texts)
            except AIError as exc:
                self._record("embeddings", started, Usage(), who, exc)
                raise
            self._record("embeddings", started, Usage(embedder.token_count(texts)), who)
            return vectors

        def call(backend: OpenAIBackend, remaining: float) -> _Embedded:
            vectors, tokens = backend.embed(feature.model, texts, timeout=remaining)
            return _Embedded(vectors, Usage(prompt_tokens=tokens))

        return self._call("embeddings", who, call).vectors

    def _local_embedder(self) -> LocalEmbedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = LocalEmbedder(threads=self.settings.local_threads)
            return self._embedder

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
        """`n` images for `prompt`. The offline renderer draws `title`/`subtitle` instead."""
        feature = self.settings.feature("images")
        if not 1 <= n <= 4:
            raise AIConfigError("between 1 and 4 images per request")
        dimensions = parse_size(size)
        if feature.backend == "renderer":
            started = time.perf_counter()
            images = [
                render_product_card(
                    title or prompt, subtitle, size=dimensions, seed=(seed or 0) + i
                )
                for i in range(n)
            ]
            self._record("images", started, Usage(images=n), who)
            return [
                GeneratedImage(data, "renderer", RENDERER_NAME, prompt, (seed or 0) + i)
                for i, data in enumerate(images)
            ]

        def call(backend: OpenAIBackend, remaining: float) -> _Images:
            return _Images(backend.images(feature.model, prompt, size=size, n=n, timeout=remaining))

        result = self._call("images", who, call)
        return [
            GeneratedImage(data, "openai", feature.model, prompt, seed) for data in result.images
        ]

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()


def _display_url(url: str | None) -> str:
    """A server's name for messages and logs: never any credentials in its URL."""
    if not url:
        return "OpenAI"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class _Embedded:
    def __init__(self, vectors: list[list[float]], usage: Usage) -> None:
        self.vectors, self.usage = vectors, usage


class _Images:
    def __init__(self, images: list[bytes]) -> None:
        self.images, self.usage = images, Usage(images=len(images))
