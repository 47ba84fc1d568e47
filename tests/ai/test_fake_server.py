"""Tests for the fake OpenAI server, driven through the official SDK so the shapes stay honest."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.fakes.openai_server import (
    DEFAULT_CHAT_TEXT,
    DEFAULT_PNG,
    FakeOpenAI,
    fake_embedding,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[OpenAI]:
    # Closing the client closes its pooled sockets; otherwise ResourceWarning fails the test.
    with OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as c:
        yield c


def _collect(stream: openai.Stream) -> tuple[list[str], list[str | None]]:
    """Content deltas and finish reasons of a chat stream, in order."""
    texts: list[str] = []
    finishes: list[str | None] = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content is not None:
                texts.append(choice.delta.content)
            finishes.append(choice.finish_reason)
    return texts, finishes


def test_chat_reply_echoes_model_and_records_request(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_chat("Bonjour", prompt_tokens=3, completion_tokens=2)

    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert reply.choices[0].message.content == "Bonjour"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "gpt-test"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (3, 5)
    [request] = fake.requests_to("/chat/completions")
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == MESSAGES
    assert request.headers["authorization"] == "Bearer test"
    assert request.headers.get("Authorization") == "Bearer test"  # lookups ignore case
    assert "Content-Type" in request.headers
    assert json.loads(request.raw) == request.body


def test_default_chat_reply_when_nothing_queued(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="m", messages=MESSAGES)

    assert reply.choices[0].message.content == DEFAULT_CHAT_TEXT
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 5)


def test_model_override(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_chat("x", model="other-model")

    assert client.chat.completions.create(model="m", messages=MESSAGES).model == "other-model"


def test_tool_call(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_tool_call("lookup_product", {"sku": "A-1"}, call_id="call_9")

    reply = client.chat.completions.create(model="m", messages=MESSAGES)

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id == "call_9"
    assert call.function.name == "lookup_product"
    assert json.loads(call.function.arguments) == {"sku": "A-1"}


def test_json_reply(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_json({"title": "Mug", "tags": ["kitchen"]})

    reply = client.chat.completions.create(model="m", messages=MESSAGES)

    assert json.loads(reply.choices[0].message.content or "") == {
        "title": "Mug",
        "tags": ["kitchen"],
    }


def test_stream_of_deltas_with_usage(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_stream(["Hel", "lo", "!"], prompt_tokens=4)

    with client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)

    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == "Hello!"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 3)
    assert fake.stream_disconnects == 0


def test_plain_reply_becomes_one_delta_stream(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_chat("all at once")

    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        texts, finishes = _collect(stream)

    assert texts == ["all at once"]
    assert finishes[-1] == "stop"


def test_tool_call_can_be_streamed(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_tool_call("f", {"a": 1})

    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        chunks = list(stream)

    [call] = chunks[0].choices[0].delta.tool_calls or []
    assert call.function is not None
    assert (call.index, call.function.name, call.function.arguments) == (0, "f", '{"a": 1}')
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_cut_stream_raises_after_first_deltas(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_stream(["a", "b", "c", "d"], cut_after=2)
    texts: list[str] = []
    finishes: list[str | None] = []

    # The stream is chunked, so a hang-up mid-body is a protocol error the SDK surfaces
    # (a close-delimited body would instead end silently).
    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream,
    ):
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)

    assert texts == ["a", "b"]
    assert finishes == [None, None]
    assert fake.stream_disconnects == 0  # the server hung up, not the client


def test_client_closing_slow_stream_sets_client_gone(
    fake: FakeOpenAI, client: OpenAI, capfd: pytest.CaptureFixture[str]
) -> None:
    fake.reply_stream(["tick"] * 200, chunk_delay=0.05)

    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        first = next(stream)
    assert first.choices[0].delta.content == "tick"

    assert fake.client_gone.wait(2)
    assert fake.stream_disconnects == 1
    fake.stop()
    assert fake.errors == []
    assert capfd.readouterr().err == ""  # no traceback from the server thread


def test_embeddings_default_vectors_are_deterministic_unit_vectors(
    fake: FakeOpenAI, client: OpenAI
) -> None:
    # No encoding_format: the SDK asks for base64 float32 and decodes it itself.
    result = client.embeddings.create(model="emb", input=["red mug", "blue mug"])

    assert result.model == "emb"
    assert [d.index for d in result.data] == [0, 1]
    for item, text in zip(result.data, ["red mug", "blue mug"], strict=True):
        assert item.embedding == pytest.approx(fake_embedding(text), abs=1e-6)
        assert sum(x * x for x in item.embedding) == pytest.approx(1.0, abs=1e-5)
    assert fake.requests_to("/embeddings")[0].body["encoding_format"] == "base64"


def test_embeddings_scripted_vectors_and_string_input(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_embeddings([[0.5, 0.25, -1.0]])

    result = client.embeddings.create(model="emb", input="mug", encoding_format="float")

    assert result.data[0].embedding == [0.5, 0.25, -1.0]
    assert result.usage.prompt_tokens == result.usage.total_tokens == 1


def test_image_b64(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_image_b64(b"not-really-a-png", n=2)

    result = client.images.generate(model="img", prompt="a mug")

    assert result.data is not None
    assert [base64.b64decode(d.b64_json or "") for d in result.data] == [b"not-really-a-png"] * 2


def test_default_image_honours_n_and_response_format(client: OpenAI) -> None:
    b64 = client.images.generate(model="img", prompt="a mug", n=3)
    as_url = client.images.generate(model="img", prompt="a mug", response_format="url")

    assert b64.data is not None
    assert [base64.b64decode(d.b64_json or "") for d in b64.data] == [DEFAULT_PNG] * 3
    assert as_url.data is not None
    with urllib.request.urlopen(as_url.data[0].url or "", timeout=5) as response:
        assert response.read() == DEFAULT_PNG


def test_image_url_is_hosted_by_the_server(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_image_url(b"\xff\xd8jpeg-bytes", content_type="image/jpeg")

    result = client.images.generate(model="img", prompt="a mug")

    assert result.data is not None
    url = result.data[0].url or ""
    assert url.startswith(fake.url_for("/files/"))
    assert url.endswith(".jpg")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.read() == b"\xff\xd8jpeg-bytes"


def test_serve_file_and_redirect(fake: FakeOpenAI) -> None:
    target = fake.serve_file("/files/a.png", b"png!", headers={"X-Extra": "1"})
    start = fake.redirect("/go", target)

    with urllib.request.urlopen(start, timeout=5) as response:
        assert response.url == target
        assert response.headers["X-Extra"] == "1"
        assert response.read() == b"png!"
    assert [r.path for r in fake.requests] == ["/go", "/files/a.png"]


def test_unknown_path_is_a_json_404(fake: FakeOpenAI) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(fake.url_for("/v1/nope"), timeout=5)
    with caught.value as error:
        assert error.code == 404
        assert json.loads(error.read())["error"]["message"].startswith("Unknown path")


def test_models_list(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["fake-model"]


def test_rate_limit_exposes_retry_after(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_error(429, message="slow down", headers={"Retry-After": "1"})

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"
    assert "slow down" in caught.value.message


def test_server_error(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_error(500)

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.status_code == 500
    # The queue is consumed: the next call gets the default reply again.
    reply = client.chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_CHAT_TEXT


def test_error_scripting_is_per_kind(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_error(503, kind="embeddings")

    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="emb", input="x")
    assert caught.value.status_code == 503


def test_malformed_json_body(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_malformed()

    # Surprise: the SDK lets the raw JSONDecodeError escape instead of wrapping it.
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_malformed_non_json_body_is_returned_as_text(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply_malformed(b"<html>proxy error</html>", content_type="text/html", kind="images")

    # Surprise: with a non-JSON content type the SDK returns the body as a plain str.
    result = client.images.generate(model="img", prompt="a mug")

    assert result == "<html>proxy error</html>"


def test_delay_next(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.delay_next(0.3)

    started = time.monotonic()
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - started < 0.3  # only the next reply was delayed


def test_release_delays_sends_a_held_reply_now_and_skips_later_delays(
    fake: FakeOpenAI, client: OpenAI
) -> None:
    fake.delay_next(60)
    fake.delay_next(60)
    replies: list[str | None] = []
    asking = threading.Thread(
        target=lambda: replies.append(
            client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        )
    )
    asking.start()
    while not fake.requests:
        time.sleep(0.01)
    fake.release_delays()
    asking.join()
    assert replies and replies[0]
    # The second delay is skipped too: held, this call would time out.
    assert client.chat.completions.create(model="m", messages=MESSAGES, timeout=30).choices


def test_delay_longer_than_client_timeout(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.delay_next(5, kind="embeddings")

    with pytest.raises(openai.APITimeoutError):
        client.embeddings.create(model="emb", input="x", timeout=0.2)

    assert client.embeddings.create(model="emb", input="x").data
    assert fake.errors == []


def test_stop_interrupts_a_delayed_reply(fake: FakeOpenAI) -> None:
    fake.delay_next(10)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(request)
        while not fake.requests:
            time.sleep(0.01)

        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
        assert sock.recv(100) == b""  # hung up without a reply


def test_url_for_needs_a_running_server() -> None:
    idle = FakeOpenAI()
    with pytest.raises(RuntimeError, match="not running"):
        _ = idle.base_url
    with pytest.raises(ValueError, match="kind"):
        idle.reply_error(500, kind="audio")


def test_command_line_demo_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"]
    with subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        try:
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:")
            assert base_url.endswith("/v1")
            with OpenAI(base_url=base_url, api_key="test", max_retries=0) as demo:
                reply = demo.chat.completions.create(model="m", messages=MESSAGES)
            assert reply.choices[0].message.content == DEFAULT_CHAT_TEXT
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0
    assert "Traceback" not in stderr
