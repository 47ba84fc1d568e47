"""The AI client inside the app: one client per app, usage in the ledger, `shopai ai check`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.catalog.models import Category
from shopai.extensions import db
from shopai.usage.models import UsageRecord


@pytest.fixture
def ai_app(app_config: dict, fake_env: dict[str, str]) -> Iterator[Flask]:
    app = create_app({**app_config, "SHOPAI_AI": AISettings.from_env(fake_env)})
    with app.app_context():
        yield app
        ai_client().close()
        flush_usage()  # nothing left to write once the engine is disposed
        db.session.remove()
        db.engine.dispose()


def ledger() -> list[UsageRecord]:
    """The ledger's rows; usage is written by a background thread, so flush it first."""
    assert flush_usage()
    return list(db.session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


def test_every_call_lands_in_the_ledger(ai_app, fake):
    fake.reply_chat("hi", prompt_tokens=1000, completion_tokens=500)
    ai_client().chat("chat", [{"role": "user", "content": "hi"}], who="user:7")
    fake.reply_error(400)
    with pytest.raises(Exception, match="refused"):
        ai_client().chat("suggest", [{"role": "user", "content": "x"}], who="session:s1")
    ok, failed = ledger()
    assert (ok.feature, ok.backend, ok.model, ok.who) == (
        "chat",
        "openai",
        "gpt-5.4-mini",
        "user:7",
    )
    assert (ok.prompt_tokens, ok.completion_tokens, ok.ok) == (1000, 500, True)
    assert ok.estimated_cost == pytest.approx(0.002)  # 1000 * $1/M + 500 * $2/M
    assert ok.latency_ms >= 0
    assert failed.ok is False and "AIRequestRefused" in failed.error
    assert failed.estimated_cost is None  # no price configured for the suggest model


def test_recording_usage_never_touches_the_callers_transaction(ai_app, fake):
    db.session.add(Category(name="Pending", slug="pending", description=""))
    ai_client().chat("chat", [{"role": "user", "content": "hi"}])
    db.session.rollback()  # the caller changes its mind: its work goes, the ledger row stays
    assert db.session.scalars(select(Category)).all() == []
    assert len(ledger()) == 1


def test_ai_check_reports_each_feature(ai_app, fake):
    result = ai_app.test_cli_runner().invoke(args=["ai", "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["suggest", "chat", "images", "embeddings"]
    assert "gpt-5.4-mini" in lines[1] and "ok" in lines[1]
    assert "skipped (a paid call" in lines[2]
    assert "text-embedding-3-small" in lines[3]
    assert "test-key" not in result.output
    written = db.session.scalars(select(UsageRecord.feature).order_by(UsageRecord.id)).all()
    assert written == ["suggest", "chat", "embeddings"]  # the command flushed before exiting


def test_ai_check_fails_loudly_when_the_backend_is_down(ai_app, fake):
    for _ in range(10):
        fake.reply_error(500)
    result = ai_app.test_cli_runner().invoke(args=["ai", "check"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "AIUnavailable" in result.output


def test_ai_check_on_the_embedded_default(app_config: dict):
    # Generous budgets: this checks the wiring, not the speed of a shared CI machine.
    slow_ok = {"SHOPAI_SUGGEST_TIMEOUT": "120", "SHOPAI_CHAT_TIMEOUT": "120"}
    app = create_app({**app_config, "SHOPAI_AI": AISettings.from_env(slow_ok)})
    result = app.test_cli_runner().invoke(args=["ai", "check"])
    with app.app_context():
        ai_client().close()  # its kept-alive connection, not left to the garbage collector
        db.engine.dispose()
    assert result.exit_code == 0, result.output
    assert "SmolLM2-135M-Instruct" in result.output
    assert "pillow-card-v1" in result.output and "384-dimensional" in result.output
