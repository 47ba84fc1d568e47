"""The AI client against a real HTTP server (the fake), for every failure it must survive."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from shopai.ai.errors import (
    AIBadResponse,
    AIError,
    AIRateLimited,
    AIRequestRefused,
    AITimeout,
    AIUnavailable,
    ImageDownloadError,
)
from shopai.ai.types import TextDelta

MESSAGES = [{"role": "user", "content": "Hello"}]
SCHEMA = {
    "type": "object",
    "properties": {"queries": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["queries"],
    "additionalProperties": False,
}


def png(size=(16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (9, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- chat ---------------------------------------------------------------------------------


def test_chat_returns_text_and_records_usage(client, fake, events):
    fake.reply_chat("Try the Kestrel K7.", prompt_tokens=12, completion_tokens=6)
    reply = client.chat("chat", MESSAGES, who="session:abc", max_tokens=50)
    assert reply.text == "Try the Kestrel K7."
    request = fake.requests_to("/chat/completions")[0]
    assert request.body["model"] == "gpt-5.4-mini"
    assert request.body["max_completion_tokens"] == 50
    assert request.headers.get("Authorization") == "Bearer test-key"
    (event,) = events
    assert (event.feature, event.backend, event.model) == ("chat", "openai", "gpt-5.4-mini")
    assert (event.prompt_tokens, event.completion_tokens, event.ok) == (12, 6, True)
    assert event.who == "session:abc" and event.latency_ms > 0
    assert event.estimated_cost == pytest.approx((12 * 1.0 + 6 * 2.0) / 1e6)


def test_each_feature_uses_its_own_model(client, fake):
    client.chat("suggest", MESSAGES)
    assert fake.requests_to("/chat/completions")[0].body["model"] == "gpt-5.4-nano"


def test_tool_calls_are_parsed(client, fake):
    fake.reply_tool_call("search_products", {"q": "headphones", "max_price": 200})
    reply = client.chat("chat", MESSAGES, tools=[{"type": "function", "function": {"name": "x"}}])
    (call,) = reply.tool_calls
    assert (call.name, call.arguments) == ("search_products", {"q": "headphones", "max_price": 200})
    assert reply.finish_reason == "tool_calls"


# -- failures ------------------------------------------------------------------------------


def test_timeout_gives_up_at_the_feature_budget(client, fake, events):
    fake.delay_next(3, kind="chat")
    with pytest.raises(AITimeout):  # the reply comes after 3 s; the suggest budget is 1 s
        client.chat("suggest", MESSAGES)
    assert len(fake.requests_to("/chat/completions")) == 1  # suggestions never retry
    assert events[-1].ok is False and "AITimeout" in events[-1].error


def test_429_waits_for_retry_after_then_succeeds(client, fake):
    fake.reply_error(429, headers={"Retry-After": "1"})
    fake.reply_chat("after the wait")
    started = time.monotonic()
    assert client.chat("chat", MESSAGES).text == "after the wait"
    assert time.monotonic() - started >= 0.9
    assert len(fake.requests_to("/chat/completions")) == 2  # one loop of retries, not two


def test_429_with_a_long_retry_after_fails_fast(client, fake):
    fake.reply_error(429, headers={"Retry-After": "120"})
    started = time.monotonic()
    with pytest.raises(AIRateLimited) as info:
        client.chat("chat", MESSAGES)
    assert info.value.retry_after == pytest.approx(120, abs=1)
    assert time.monotonic() - started < 60  # did not sit out a wait beyond its 3 s budget
    assert len(fake.requests_to("/chat/completions")) == 1


def test_500s_are_retried_a_bounded_number_of_times(client, fake):
    for _ in range(5):
        fake.reply_error(500)
    with pytest.raises(AIUnavailable):
        client.chat("chat", MESSAGES)  # chat: 2 retries in these settings
    assert len(fake.requests_to("/chat/completions")) == 3


def test_500_then_success(client, fake):
    fake.reply_error(503)
    fake.reply_chat("recovered")
    assert client.chat("chat", MESSAGES).text == "recovered"


def test_client_errors_are_not_retried(client, fake):
    fake.reply_error(400, message="model not found")
    with pytest.raises(AIRequestRefused):
        client.chat("chat", MESSAGES)
    assert len(fake.requests_to("/chat/completions")) == 1


def test_malformed_body_is_a_bad_response(client, fake):
    fake.reply_malformed(b"{not json")
    with pytest.raises(AIBadResponse):
        client.chat("chat", MESSAGES)


def test_breaker_opens_on_an_outage_and_recovers(make_client, fake):
    client = make_client(SHOPAI_CHAT_RETRIES="0")
    for _ in range(3):
        fake.reply_error(500)
    for _ in range(3):
        with pytest.raises(AIUnavailable):
            client.chat("chat", MESSAGES)
    sent = len(fake.requests_to("/chat/completions"))
    with pytest.raises(AIUnavailable, match="circuit open"):
        client.chat("chat", MESSAGES)
    assert len(fake.requests_to("/chat/completions")) == sent  # the server was not called
    time.sleep(0.6)  # reset timeout in these settings: 0.5 s
    assert client.chat("chat", MESSAGES).text  # the half-open trial succeeds and closes it
    assert client.chat("chat", MESSAGES).text


def test_timeouts_of_one_feature_do_not_open_another_features_breaker(make_client, fake):
    # Regression: one breaker per server meant three timed-out 3 s suggestions refused
    # the 60 s chat for 30 s. Breakers are per (server, feature) now.
    client = make_client(
        SHOPAI_SUGGEST_TIMEOUT="0.3",
        SHOPAI_SUGGEST_RETRIES="0",
        SHOPAI_AI_BREAKER_RESET_SECONDS="600",  # stays open for the whole test
    )
    for _ in range(client.settings.breaker_failures):
        fake.delay_next(30, kind="chat")  # far beyond the suggest budget
        with pytest.raises(AITimeout):
            client.chat("suggest", MESSAGES)
    sent = len(fake.requests_to("/chat/completions"))
    assert sent == client.settings.breaker_failures

    fake.reply_chat("chat still works")
    assert client.chat("chat", MESSAGES).text == "chat still works"
    requests = fake.requests_to("/chat/completions")
    assert len(requests) == sent + 1 and requests[-1].body["model"] == "gpt-5.4-mini"

    with pytest.raises(AIUnavailable, match="circuit open"):
        client.chat("suggest", MESSAGES)
    assert len(fake.requests_to("/chat/completions")) == sent + 1  # refused locally


def test_features_on_one_server_share_its_connection_pool(client):
    chat_backend, chat_breaker = client.backend("chat")
    suggest_backend, suggest_breaker = client.backend("suggest")
    assert chat_backend is suggest_backend
    assert chat_breaker is not suggest_breaker


# -- streaming -----------------------------------------------------------------------------


def test_stream_yields_deltas_and_records_usage(client, fake, events):
    fake.reply_stream(["Kestrel ", "K7 ", "is great."], completion_tokens=3)
    with client.stream("chat", MESSAGES, who="user:1") as stream:
        text = "".join(stream.text_deltas())
    assert text == "Kestrel K7 is great."
    assert stream.finish_reason == "stop"
    assert events[-1].completion_tokens == 3 and events[-1].ok


def test_cut_stream_raises_after_the_partial_text(client, fake, events):
    fake.reply_stream(["one ", "two ", "three"], cut_after=2)
    received = []
    with pytest.raises(AIBadResponse), client.stream("chat", MESSAGES) as stream:
        for delta in stream.text_deltas():
            received.append(delta)
    assert received == ["one ", "two "]
    assert events[-1].ok is False


def test_cancelling_a_stream_stops_the_upstream_request(client, fake, events):
    fake.reply_stream([f"token{i} " for i in range(200)], chunk_delay=0.02)
    stream = client.stream("chat", MESSAGES)
    assert next(stream) == TextDelta("token0 ")
    assert next(stream) == TextDelta("token1 ")
    stream.close()
    assert fake.client_gone.wait(2), "the server never saw the client go"
    assert events[-1].completion_tokens == 2  # counted from deltas: no usage chunk arrived
    assert list(stream) == []


@pytest.mark.parametrize("chunk", [b"[1, 2]", b'"text"', b'{"choices": "none"}'])
def test_a_streamed_chunk_of_another_shape_is_a_bad_response(client, fake, chunk):
    body = b"data: " + chunk + b"\n\ndata: [DONE]\n\n"
    fake.reply_malformed(body, content_type="text/event-stream")
    with (
        pytest.raises(AIBadResponse, match="unexpected shape"),
        client.stream("chat", MESSAGES) as stream,
    ):
        list(stream)


def test_an_error_event_in_the_middle_of_a_stream_is_an_ai_error(client, fake):
    """The SDK raises a bare `APIError` for `data: {"error": ...}`: it must end the
    reply as the shop's error (a search-only or cut-off answer), not as a crash."""
    body = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "Hi "}}]}\n\n'
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    )
    fake.reply_malformed(body, content_type="text/event-stream")
    with pytest.raises(AIError), client.stream("chat", MESSAGES) as stream:
        assert next(stream) == TextDelta("Hi ")
        list(stream)


def test_stream_open_failures_are_retried(client, fake):
    fake.reply_error(500)
    fake.reply_stream(["fine"])
    with client.stream("chat", MESSAGES) as stream:
        assert "".join(stream.text_deltas()) == "fine"


# -- structured output ---------------------------------------------------------------------


def test_structured_output_is_validated(client, fake):
    fake.reply_json({"queries": ["wireless headphones", "anc headphones"]})
    value = client.structured("suggest", MESSAGES, SCHEMA, name="queries")
    assert value == {"queries": ["wireless headphones", "anc headphones"]}
    body = fake.requests_to("/chat/completions")[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_one_repair_attempt_fixes_bad_json(client, fake):
    fake.reply_chat('{"queries": "not a list"}')
    fake.reply_json({"queries": ["fixed"]})
    assert client.structured("suggest", MESSAGES, SCHEMA) == {"queries": ["fixed"]}
    repair = fake.requests_to("/chat/completions")[1].body["messages"]
    assert repair[-2]["role"] == "assistant" and "not valid JSON" in repair[-1]["content"]


def test_still_invalid_after_repair_is_a_clear_error(client, fake):
    fake.reply_chat("bokonon bokonon")
    fake.reply_chat('{"queries": []}')
    with pytest.raises(AIBadResponse, match="did not match the schema"):
        client.structured("suggest", MESSAGES, SCHEMA)
    assert len(fake.requests_to("/chat/completions")) == 2


# -- embeddings and images -----------------------------------------------------------------


def test_embeddings_through_the_api(client, fake, events):
    fake.reply_embeddings([[1.0, 0.0], [0.0, 1.0]])
    assert client.embed(["a", "b"]) == [[1.0, 0.0], [0.0, 1.0]]
    assert fake.requests_to("/embeddings")[0].body["model"] == "text-embedding-3-small"
    assert events[-1].feature == "embeddings"


def test_images_as_base64(client, fake, events):
    fake.reply_image_b64(png())
    (image,) = client.generate_images("a photo of headphones", size="1024x1024")
    assert image.data == png() and image.backend == "openai"
    assert image.model == "gpt-image-1-mini"
    assert events[-1].images == 1


def test_images_as_urls_are_downloaded(client, fake):
    fake.reply_image_url(png((20, 20)), n=2)
    images = client.generate_images("two photos", n=2)
    assert [len(i.data) for i in images] == [len(png((20, 20)))] * 2


def test_loopback_image_urls_are_refused_by_default(make_client, fake):
    client = make_client(SHOPAI_ALLOW_PRIVATE_IMAGE_URLS="false")
    fake.reply_image_url(png())
    with pytest.raises(ImageDownloadError, match="non-public address"):
        client.generate_images("a photo")


def test_an_html_error_page_is_a_bad_response(client, fake):
    fake.reply_malformed(b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
    with pytest.raises(AIBadResponse):
        client.chat("chat", MESSAGES)


def test_malformed_embeddings_and_images_are_bad_responses(client, fake):
    fake.reply_malformed(b'{"data": "nope"}', kind="embeddings")
    with pytest.raises(AIBadResponse):
        client.embed(["x"])
    fake.reply_malformed(b'{"data": [{"b64_json": "%%%not base64"}]}', kind="images")
    with pytest.raises(AIBadResponse):
        client.generate_images("x")


# -- budgets, leaks and mapping details ----------------------------------------------------


def test_a_stream_cannot_outlive_its_budget(client, fake, events):
    fake.reply_stream(["tick "] * 200, chunk_delay=0.05)  # 10 s of trickle, 3 s budget
    received = []
    with pytest.raises(AITimeout), client.stream("chat", MESSAGES) as stream:
        received.extend(stream.text_deltas())
    assert 0 < len(received) < 200
    assert events[-1].ok is False and "AITimeout" in events[-1].error


def test_a_dropped_stream_is_closed_and_recorded(client, fake, events):
    import gc

    fake.reply_stream([f"t{i} " for i in range(200)], chunk_delay=0.02)
    stream = client.stream("chat", MESSAGES)
    next(stream)
    del stream
    gc.collect()
    assert fake.client_gone.wait(2), "an abandoned stream kept generating upstream"
    assert events[-1].completion_tokens == 1 and events[-1].prompt_tokens > 0


def test_out_of_quota_is_not_retried(client, fake):
    body = b'{"error": {"message": "quota", "type": "insufficient_quota", "code": null}}'
    fake.reply_malformed(body, status=429)
    with pytest.raises(AIRequestRefused, match="out of quota"):
        client.chat("chat", MESSAGES)
    assert len(fake.requests_to("/chat/completions")) == 1


def test_empty_embedding_input_needs_no_call(client, fake):
    assert client.embed([]) == []
    assert fake.requests_to("/embeddings") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n": 9}, "between 1 and 4"), ({"size": "auto"}, "size"), ({"size": "64x64"}, "256")],
)
def test_bad_image_requests_are_refused_before_any_call(client, fake, options, message):
    with pytest.raises(AIRequestRefused, match=message):
        client.generate_images("a photo", **options)
    assert fake.requests_to("/images/generations") == []


def test_a_closed_client_refuses_calls(client):
    client.close()
    with pytest.raises(AIUnavailable, match="closed"):
        client.chat("chat", MESSAGES)


def test_generation_is_recorded_even_when_the_download_fails(make_client, fake, events):
    client = make_client(SHOPAI_ALLOW_PRIVATE_IMAGE_URLS="false")
    fake.reply_image_url(png(), n=2)
    with pytest.raises(ImageDownloadError):
        client.generate_images("two photos", n=2)
    assert events[-1].ok and events[-1].images == 2  # paid for, so in the ledger


def test_invalid_schemas_are_a_configuration_error(client):
    from shopai.ai.errors import AIConfigError

    with pytest.raises(AIConfigError, match="invalid JSON schema"):
        client.structured("suggest", MESSAGES, {"type": "no-such-type"})
