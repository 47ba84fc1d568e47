"""Streamed replies from https servers keep their connection; stopped ones close it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from shopai.ai.keepalive import _FinishingStream, finishes_streams
from shopai.ai.openai_backend import OpenAIBackend
from shopai.ai.types import TextDelta

from ..fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Hello"}]


def backend_for(fake: FakeOpenAI, *, finish_streams: bool) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend("fake", fake.base_url, "test-key", finish_streams=finish_streams)
    yield backend
    backend.client.close()  # its pooled connections, not left to the garbage collector


@pytest.fixture
def finishing(fake: FakeOpenAI) -> Iterator[OpenAIBackend]:
    yield from backend_for(fake, finish_streams=True)


@pytest.fixture
def plain(fake: FakeOpenAI) -> Iterator[OpenAIBackend]:
    yield from backend_for(fake, finish_streams=False)


def stream_to_the_end(backend: OpenAIBackend) -> list[str]:
    stream = backend.open_stream("m", MESSAGES, timeout=5)
    try:
        return [e.text for e in backend.iter_stream(stream) if isinstance(e, TextDelta)]
    finally:
        stream.close()


@pytest.mark.parametrize(
    ("base_url", "finished"),
    [
        (None, True),  # OpenAI's own API
        ("https://api.example.com/v1", True),
        ("HTTPS://api.example.com/v1", True),
        ("http://127.0.0.1:8080/v1", False),  # a local server: llama.cpp, Ollama, vLLM
    ],
)
def test_streams_are_finished_for_https_servers_only(base_url, finished):
    assert finishes_streams(base_url) is finished


def test_streams_read_to_their_end_share_one_connection(fake, finishing):
    for _ in range(3):
        fake.reply_stream(["one ", "two "])
        assert stream_to_the_end(finishing) == ["one ", "two "]
    assert fake.connections == 1


def test_without_finishing_each_stream_opens_a_connection(fake, plain):
    for _ in range(3):
        fake.reply_stream(["one "])
        assert stream_to_the_end(plain) == ["one "]
    assert fake.connections == 3


def test_a_stream_stopped_early_closes_its_connection_at_once(fake, finishing):
    fake.reply_stream([f"token{i} " for i in range(200)], chunk_delay=0.02)
    stream = finishing.open_stream("m", MESSAGES, timeout=5)
    events = finishing.iter_stream(stream)
    assert next(events) == TextDelta("token0 ")
    stream.close()
    assert fake.client_gone.wait(2), "the server never saw the client go"
    fake.reply_stream(["one "])
    assert stream_to_the_end(finishing) == ["one "]
    assert fake.connections == 2


class _Body(httpx2.SyncByteStream):
    """A response body in the given chunks, noting how many were read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while self.read < len(self.chunks):
            self.read += 1
            yield self.chunks[self.read - 1]

    def close(self) -> None:
        self.closed = True


def finishing_stream(chunks: list[bytes], read: int) -> tuple[_FinishingStream, _Body]:
    body = _Body(chunks)
    stream = _FinishingStream(body, httpx2.Request("POST", "https://api.example.com/v1"))
    for _, _chunk in zip(range(read), stream, strict=False):
        pass
    return stream, body


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"x": 1}\n\ndata: [DONE]\n\n'],
        [b'data: {"x": 1}\n\ndata: [DO', b"NE]\n\n"],  # split across reads
        [b"data: [DONE]\r\n\r\n"],
    ],
)
def test_the_end_is_read_after_done(chunks):
    stream, body = finishing_stream([*chunks, b""], read=len(chunks))
    stream.close()
    assert body.read == len(chunks) + 1  # the body's end was read
    assert body.closed


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"x": 1}\n\n'],  # stopped mid-answer
        [b'data: {"text": "data: [DONE]\\n\\n"}\n\n'],  # the words, not the event
        [b"data: [DONE]\n\ndata: {}\n\n"],  # [DONE] not last: not an ended stream
    ],
)
def test_a_stream_that_did_not_end_is_closed_without_reading(chunks):
    stream, body = finishing_stream([*chunks, b"more", b"more"], read=len(chunks))
    stream.close()
    assert body.read == len(chunks)
    assert body.closed
