"""Plain values passed in and out of the AI client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class Message(TypedDict, total=False):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_call_id: str
    tool_calls: list[dict[str, Any]]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    usage: Usage
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass(frozen=True)
class TextDelta:
    """The next piece of the reply's text."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """One whole tool call: servers stream a call in fragments, and a half-received call
    is useless to act on, so a call is only reported once its arguments are complete."""

    call: ToolCall


@dataclass(frozen=True)
class UsageReport:
    """What the server says the call cost; arrives after the last text and tool call."""

    usage: Usage


@dataclass(frozen=True)
class Finished:
    """The server's finish reason ("stop", "length", "tool_calls", ...). Always the last
    event: a stream that ends without one was cut off and raises `AIBadResponse` instead."""

    reason: str


StreamEvent = TextDelta | ToolCallEvent | UsageReport | Finished


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    backend: str
    model: str
    prompt: str
    seed: int | None = None


@dataclass(frozen=True)
class UsageEvent:
    """One model call, as the usage ledger stores it."""

    feature: str
    backend: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    images: int
    latency_ms: float
    estimated_cost: float | None  # USD; None when no price is configured for the model
    who: str | None
    ok: bool
    error: str | None = None
