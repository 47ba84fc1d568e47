"""The prompt's size per backend: the embedded model reads fewer, shorter product lines."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import pytest

from shopai.assistant.prompt import (
    EMBEDDED,
    HOSTED,
    RECITED_RULES,
    SYSTEM_PROMPT,
    _one_line,
    build_messages,
)
from shopai.assistant.services import prompt_budget


def _product(i: int, description: str = "word " * 100) -> SimpleNamespace:
    category = SimpleNamespace(name="Headphones")
    return SimpleNamespace(
        id=i, name=f"Phone {i}", price=Decimal("10.00"), category=category, description=description
    )


def test_the_embedded_budget_lists_three_short_lines():
    products = [_product(i) for i in range(1, 6)]
    hosted = build_messages([], "headphones", products, HOSTED)[-1]["content"]
    embedded = build_messages([], "headphones", products, EMBEDDED)[-1]["content"]
    assert [f"[P{i}]" in hosted for i in range(1, 6)] == [True] * 5
    assert [f"[P{i}]" in embedded for i in range(1, 6)] == [True] * 3 + [False] * 2
    assert len(embedded.splitlines()[1]) < len(hosted.splitlines()[1])


def test_the_embedded_budget_keeps_less_history():
    history = [("user", "a" * 1000), ("assistant", "b" * 1000), ("user", "c" * 500)]
    kept = build_messages(history, "more?", [], EMBEDDED)
    assert [m["content"][0] for m in kept[1:-1]] == ["c"]
    assert len(build_messages(history, "more?", [], HOSTED)) == 5


@pytest.mark.parametrize(
    "text",
    ["", "short", "  spaced   out  \n text ", "x" * 500, ("word \n\t " * 80), " " * 300 + "late"],
)
def test_one_line_collapses_only_the_start_with_the_same_result(text):
    for limit in (1, 10, 60, 120):
        assert _one_line(text, limit) == " ".join(text.split())[:limit]


def test_the_budget_follows_the_backend_and_the_setting(shop):
    assert prompt_budget() == HOSTED  # the tests' fake is an OpenAI-compatible server
    shop.config["SHOPAI_CHAT_PROMPT_PRODUCTS"] = 2
    assert prompt_budget().products == 2
    shop.config["SHOPAI_CHAT_PROMPT_PRODUCTS"] = 0
    settings = shop.config["SHOPAI_AI"]
    chat = replace(settings.feature("chat"), backend="local")
    shop.config["SHOPAI_AI"] = replace(settings, features={**settings.features, "chat": chat})
    try:
        assert prompt_budget() == EMBEDDED
    finally:
        shop.config["SHOPAI_AI"] = settings


def test_the_recited_rules_are_openings_of_the_system_prompts_rules():
    """The embedded model's stop strings follow the prompt: a rule reworded without its
    opening here would be recited again."""
    assert [opening for opening in RECITED_RULES if opening not in SYSTEM_PROMPT] == []
