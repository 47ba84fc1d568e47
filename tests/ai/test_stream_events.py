"""Streamed replies as typed events: text, whole tool calls, usage, finish."""

from __future__ import annotations

import json

import openai
import pytest

from shopai.ai.errors import AIBadResponse
from shopai.ai.types import (
    Finished,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
    UsageReport,
)

MESSAGES = [{"role": "user", "content": "Find me headphones under $200"}]
SEARCH = {"q": "wireless headphones", "max_price": 200, "tags": ["anc", "over-ear"]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_products",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}, "max_price": {"type": "number"}},
                "required": ["q"],
            },
        },
    }
]


def test_the_fake_streams_tool_call_arguments_in_fragments(fake):
    fake.reply_stream_tool_calls([("search_products", SEARCH)], fragment_chars=4)
    sdk = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    with sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        fragments = [
            call
            for chunk in stream
            if chunk.choices
            for call in chunk.choices[0].delta.tool_calls or []
        ]
    sdk.close()
    assert len(fragments) > 5
    first, *rest = fragments
    assert (first.index, first.id, first.function.name) == (0, "call_1", "search_products")
    assert all(f.index == 0 and f.id is None and f.function.name is None for f in rest)
    assert json.loads("".join(f.function.arguments for f in fragments)) == SEARCH


def test_a_streamed_tool_call_arrives_as_one_event_with_parsed_arguments(client, fake):
    fake.reply_stream_tool_calls([("search_products", SEARCH)], fragment_chars=3)
    with client.stream("chat", MESSAGES) as stream:
        received = list(stream)
    calls = [event for event in received if isinstance(event, ToolCallEvent)]
    assert calls == [ToolCallEvent(ToolCall("call_1", "search_products", SEARCH))]


def test_text_tool_calls_usage_and_finish_arrive_in_order(client, fake, events):
    fake.reply_stream_tool_calls(
        [("search_products", SEARCH), ("compare", {"ids": [3, 7]})],
        text=["Let me ", "look."],
        prompt_tokens=11,
        completion_tokens=9,
    )
    with client.stream("chat", MESSAGES, who="user:1") as stream:
        received = list(stream)
    assert received == [
        TextDelta("Let me "),
        TextDelta("look."),
        ToolCallEvent(ToolCall("call_1", "search_products", SEARCH)),
        ToolCallEvent(ToolCall("call_2", "compare", {"ids": [3, 7]})),
        UsageReport(Usage(11, 9)),
        Finished("tool_calls"),
    ]
    assert stream.finish_reason == "tool_calls" and stream.usage == Usage(11, 9)
    (event,) = events
    assert (event.prompt_tokens, event.completion_tokens, event.ok) == (11, 9, True)


def test_a_streamed_request_carries_the_tools(client, fake):
    fake.reply_stream_tool_calls([("search_products", {"q": "mug"})])
    with client.stream("chat", MESSAGES, tools=TOOLS) as stream:
        received = list(stream)
    body = fake.requests_to("/chat/completions")[0].body
    assert body["stream"] is True and body["tools"] == TOOLS
    assert ToolCallEvent(ToolCall("call_1", "search_products", {"q": "mug"})) in received


def test_without_tools_none_are_sent(client, fake):
    with client.stream("chat", MESSAGES) as stream:
        list(stream)
    assert "tools" not in fake.requests_to("/chat/completions")[0].body


@pytest.mark.parametrize("arguments", ['{"q": "head', "[1, 2]", "not json"])
def test_malformed_streamed_tool_arguments_are_a_bad_response(client, fake, events, arguments):
    fake.reply_stream_tool_calls([("search_products", arguments)])
    received = []
    with pytest.raises(AIBadResponse, match="tool call"), client.stream("chat", MESSAGES) as s:
        received.extend(s)
    assert not any(isinstance(event, ToolCallEvent) for event in received)
    (event,) = events
    assert event.ok is False and "AIBadResponse" in event.error


def test_a_stream_cut_inside_a_tool_call_is_a_bad_response(client, fake, events):
    fake.reply_stream_tool_calls([("search_products", SEARCH)], fragment_chars=4, cut_after=3)
    received = []
    with pytest.raises(AIBadResponse), client.stream("chat", MESSAGES) as stream:
        received.extend(stream)
    assert received == []  # a half-received call is never reported
    (event,) = events
    assert event.ok is False


def test_text_deltas_is_the_way_to_read_only_text(client, fake, events):
    fake.reply_stream(["Kestrel ", "K7"], completion_tokens=2)
    with client.stream("chat", MESSAGES) as stream:
        assert list(stream.text_deltas()) == ["Kestrel ", "K7"]
    assert stream.finish_reason == "stop" and stream.usage == Usage(7, 2)
    assert len(events) == 1 and events[0].ok


def test_text_deltas_skips_tool_calls_but_the_stream_still_records_them(client, fake):
    fake.reply_stream_tool_calls([("search_products", SEARCH)], text=["One moment."])
    with client.stream("chat", MESSAGES) as stream:
        assert list(stream.text_deltas()) == ["One moment."]
    assert stream.finish_reason == "tool_calls"
    assert stream.tool_calls == [ToolCall("call_1", "search_products", SEARCH)]


def test_usage_is_recorded_once_as_soon_as_the_stream_finishes(client, fake, events):
    fake.reply_stream(["a", "b"], completion_tokens=2)
    with client.stream("chat", MESSAGES) as stream:
        for event in stream:
            if isinstance(event, Finished):
                assert len(events) == 1  # recorded before the caller closes anything
        assert list(stream) == []
        stream.close()
    assert len(events) == 1 and events[0].completion_tokens == 2


def test_closing_a_stream_in_the_middle_of_a_tool_call_records_it_once(client, fake, events):
    fake.reply_stream_tool_calls([("search_products", SEARCH)], fragment_chars=1, chunk_delay=0.02)
    with client.stream("chat", MESSAGES) as stream:
        stream.close()
        assert list(stream) == []
    assert fake.client_gone.wait(2), "the server never saw the client go"
    (event,) = events
    assert event.ok and event.prompt_tokens > 0
