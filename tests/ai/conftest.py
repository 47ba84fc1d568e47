from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from shopai.ai.client import AIClient
from shopai.ai.settings import AISettings
from shopai.ai.types import UsageEvent

from ..fakes.openai_server import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_env(fake: FakeOpenAI) -> dict[str, str]:
    """Settings that point every feature at the fake server, as an operator would set them."""
    return {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.base_url,
        "SHOPAI_IMAGE_BACKEND": "api",
        "SHOPAI_EMBEDDING_BACKEND": "api",
        "SHOPAI_ALLOW_PRIVATE_IMAGE_URLS": "true",
        "SHOPAI_SUGGEST_TIMEOUT": "1",
        "SHOPAI_CHAT_TIMEOUT": "3",
        "SHOPAI_CHAT_RETRIES": "2",
        "SHOPAI_IMAGES_TIMEOUT": "5",
        "SHOPAI_AI_BREAKER_FAILURES": "3",
        "SHOPAI_AI_BREAKER_RESET_SECONDS": "0.5",
        "SHOPAI_AI_PRICES": '{"gpt-5.4-mini": {"input": 1.0, "output": 2.0}}',
    }


@pytest.fixture
def events() -> list[UsageEvent]:
    return []


@pytest.fixture
def make_client(
    fake_env: dict[str, str], events: list[UsageEvent]
) -> Iterator[Callable[..., AIClient]]:
    clients: list[AIClient] = []

    def make(**overrides: str) -> AIClient:
        client = AIClient(AISettings.from_env({**fake_env, **overrides}), on_usage=events.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., AIClient]) -> AIClient:
    return make_client()
