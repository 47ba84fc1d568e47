"""AI settings, read from environment variables and checked once.

Every model name is a setting. Defaults pick current OpenAI models when a key is
set, and the embedded local model (no key, no network) otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ..env import EnvReader, SettingError
from .errors import AIConfigError

Feature = Literal["suggest", "chat", "images", "embeddings"]
FEATURES: tuple[Feature, ...] = ("suggest", "chat", "images", "embeddings")

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"
OPENAI_DEFAULT_MODELS: dict[Feature, str] = {
    "suggest": "gpt-5.4-nano",
    "chat": "gpt-5.4-mini",
    "images": "gpt-image-1-mini",
    "embeddings": "text-embedding-3-small",
}
# Suggestions must give up fast (the shopper is typing); images may take minutes.
DEFAULT_TIMEOUTS: dict[Feature, float] = {
    "suggest": 3.0,
    "chat": 60.0,
    "images": 180.0,
    "embeddings": 15.0,
}
DEFAULT_RETRIES: dict[Feature, int] = {"suggest": 0, "chat": 1, "images": 2, "embeddings": 2}

Backend = Literal["openai", "local", "onnx", "renderer"]


@dataclass(frozen=True)
class FeatureSettings:
    backend: Backend
    model: str
    timeout: float  # seconds for the whole call, retries included
    max_retries: int
    # None: the backend's default (OpenAI, or the local server). May carry credentials.
    base_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Price:
    """USD per million input/output tokens, and per generated image."""

    input: float = 0.0
    output: float = 0.0
    image: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int, images: int) -> float:
        return (
            prompt_tokens * self.input / 1e6
            + completion_tokens * self.output / 1e6
            + images * self.image
        )


@dataclass(frozen=True)
class AISettings:
    features: dict[Feature, FeatureSettings]
    api_key: str | None = field(default=None, repr=False)
    local_model_path: str | None = None
    local_context: int = 4096
    local_threads: int = 2
    local_parallel: int = 2
    breaker_failures: int = 3
    breaker_reset_seconds: float = 30.0
    download_max_bytes: int = 20 * 1024 * 1024
    allow_private_urls: bool = False
    prices: dict[str, Price] = field(default_factory=dict)

    def feature(self, name: Feature) -> FeatureSettings:
        return self.features[name]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AISettings:
        try:
            return _from_env(EnvReader(environ))
        except SettingError as exc:
            raise AIConfigError(str(exc)) from None


def display_url(url: str | None) -> str:
    """A server's name for messages and logs: never the credentials a URL may carry."""
    if not url:
        return "OpenAI"
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _url(reader: EnvReader, name: str) -> str | None:
    value = reader.text(name).rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise AIConfigError(
            f"{name} must start with http:// or https://, got {display_url(value)!r}"
        )
    return value or None


def _prices(reader: EnvReader) -> dict[str, Price]:
    raw = reader.text("SHOPAI_AI_PRICES")
    if not raw:
        return {}
    try:
        table = json.loads(raw)
        return {model: Price(**{k: float(v) for k, v in p.items()}) for model, p in table.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise AIConfigError(
            'SHOPAI_AI_PRICES must be JSON like {"gpt-5.4-mini": {"input": 0.75, "output": 4.5}}'
            f" ({exc})"
        ) from None


def _from_env(reader: EnvReader) -> AISettings:
    api_key = reader.text("OPENAI_API_KEY") or None
    base_url = _url(reader, "OPENAI_BASE_URL")
    text_backend = reader.choice("SHOPAI_AI_BACKEND", "auto", ("auto", "openai", "local"))
    if text_backend == "auto":
        text_backend = "openai" if api_key or base_url else "local"
    if text_backend == "openai" and not (api_key or base_url):
        raise AIConfigError("SHOPAI_AI_BACKEND=openai needs OPENAI_API_KEY or OPENAI_BASE_URL")

    embedding_backend = reader.choice("SHOPAI_EMBEDDING_BACKEND", "local", ("local", "api"))
    if embedding_backend == "api" and text_backend == "local":
        raise AIConfigError("SHOPAI_EMBEDDING_BACKEND=api needs an OpenAI-compatible server")

    image_base_url = _url(reader, "SHOPAI_IMAGE_BASE_URL") or base_url
    image_backend = reader.choice("SHOPAI_IMAGE_BACKEND", "auto", ("auto", "api", "renderer"))
    if image_backend == "auto":
        # Only OpenAI itself is known to serve images; other servers opt in explicitly.
        image_backend = "api" if api_key and not image_base_url else "renderer"
    if image_backend == "api" and not (api_key or image_base_url):
        raise AIConfigError("SHOPAI_IMAGE_BACKEND=api needs OPENAI_API_KEY or an image base URL")

    local_model_path = reader.text("SHOPAI_LOCAL_MODEL_PATH") or None
    local_name = Path(local_model_path).stem if local_model_path else LOCAL_MODEL_NAME

    def text_feature(feature: Feature, setting: str) -> FeatureSettings:
        default = OPENAI_DEFAULT_MODELS[feature] if text_backend == "openai" else local_name
        return FeatureSettings(
            backend="openai" if text_backend == "openai" else "local",
            model=reader.text(setting) or default,
            timeout=reader.number(
                f"SHOPAI_{feature.upper()}_TIMEOUT", DEFAULT_TIMEOUTS[feature], 0.1
            ),
            max_retries=reader.integer(
                f"SHOPAI_{feature.upper()}_RETRIES", DEFAULT_RETRIES[feature], 0
            ),
            base_url=base_url if text_backend == "openai" else None,
        )

    features: dict[Feature, FeatureSettings] = {
        "suggest": text_feature("suggest", "SHOPAI_SUGGEST_MODEL"),
        "chat": text_feature("chat", "SHOPAI_CHAT_MODEL"),
        "embeddings": FeatureSettings(
            backend="openai" if embedding_backend == "api" else "onnx",
            model=reader.text("SHOPAI_EMBEDDING_MODEL")
            or (
                OPENAI_DEFAULT_MODELS["embeddings"]
                if embedding_backend == "api"
                else "all-MiniLM-L6-v2-int8"
            ),
            timeout=reader.number("SHOPAI_EMBEDDINGS_TIMEOUT", DEFAULT_TIMEOUTS["embeddings"], 0.1),
            max_retries=reader.integer("SHOPAI_EMBEDDINGS_RETRIES", DEFAULT_RETRIES["embeddings"]),
            base_url=base_url,
        ),
        "images": FeatureSettings(
            backend="openai" if image_backend == "api" else "renderer",
            model=reader.text("SHOPAI_IMAGE_MODEL")
            or (OPENAI_DEFAULT_MODELS["images"] if image_backend == "api" else "pillow-card-v1"),
            timeout=reader.number("SHOPAI_IMAGES_TIMEOUT", DEFAULT_TIMEOUTS["images"], 0.1),
            max_retries=reader.integer("SHOPAI_IMAGES_RETRIES", DEFAULT_RETRIES["images"]),
            base_url=image_base_url,
        ),
    }
    return AISettings(
        features=features,
        api_key=api_key,
        local_model_path=local_model_path,
        local_context=reader.integer("SHOPAI_LOCAL_CONTEXT", 4096, 512),
        local_threads=reader.integer("SHOPAI_LOCAL_THREADS", 2, 1),
        local_parallel=reader.integer("SHOPAI_LOCAL_PARALLEL", 2, 1),
        breaker_failures=reader.integer("SHOPAI_AI_BREAKER_FAILURES", 3, 1),
        breaker_reset_seconds=reader.number("SHOPAI_AI_BREAKER_RESET_SECONDS", 30.0, 0.01),
        download_max_bytes=reader.integer("SHOPAI_IMAGE_DOWNLOAD_MAX_MB", 20, 1) * 1024 * 1024,
        allow_private_urls=reader.flag("SHOPAI_ALLOW_PRIVATE_IMAGE_URLS"),
        prices=_prices(reader),
    )
