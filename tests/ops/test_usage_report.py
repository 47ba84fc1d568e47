"""Model usage per feature per day: the aggregation and the chart's geometry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shopai.ai.settings import Price
from shopai.extensions import db
from shopai.usage.chart import format_value, nice_ceiling, stacked_bars
from shopai.usage.models import UsageRecord
from shopai.usage.report import usage_by_feature_and_day

TODAY = date(2026, 11, 30)


def record(
    feature: str,
    when: datetime,
    *,
    model: str = "gpt-x",
    prompt: int = 0,
    completion: int = 0,
    images: int = 0,
    cost: int | None = 0,
    ok: bool = True,
) -> UsageRecord:
    row = UsageRecord(
        feature=feature,
        backend="openai",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        images=images,
        cost_micro_usd=cost,
        created_at=when,
        ok=ok,
    )
    db.session.add(row)
    return row


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_calls_tokens_and_cost_are_summed_per_feature_and_utc_day(app):
    record("chat", at(TODAY, 0, 0), prompt=100, completion=50, cost=1_000)
    record("chat", at(TODAY, 23, 59), prompt=10, completion=5, cost=2_000, ok=False)
    record("chat", at(TODAY - timedelta(days=1), 23, 59), prompt=7, completion=3, cost=500)
    record("suggest", at(TODAY), prompt=20, completion=4, cost=10)
    db.session.commit()

    report = usage_by_feature_and_day(30, today=TODAY)

    today = report.cell("chat", TODAY)
    assert (today.calls, today.failed, today.tokens, today.cost_micro_usd) == (2, 1, 165, 3_000)
    yesterday = report.cell("chat", TODAY - timedelta(days=1))
    assert (yesterday.calls, yesterday.tokens) == (1, 10)
    assert report.cell("suggest", TODAY).tokens == 24
    assert report.day_total(TODAY).calls == 3
    assert report.feature_total("chat").calls == 3
    assert report.total().cost == pytest.approx(0.00351)


def test_the_window_has_every_day_and_nothing_outside_it(app):
    record("chat", at(TODAY - timedelta(days=30)))  # 31 days ago counting today: out
    record("chat", at(TODAY - timedelta(days=29)))
    record("chat", at(TODAY + timedelta(days=1), 0, 0))  # tomorrow (a skewed clock): out
    db.session.commit()

    report = usage_by_feature_and_day(30, today=TODAY)

    assert len(report.days) == 30
    assert report.days[0] == TODAY - timedelta(days=29) and report.days[-1] == TODAY
    assert report.total().calls == 1


def test_features_come_in_a_fixed_order_and_unknown_ones_follow(app):
    record("zz-old-feature", at(TODAY))
    record("chat", at(TODAY))
    db.session.commit()
    report = usage_by_feature_and_day(30, today=TODAY)
    assert report.features == ["suggest", "chat", "images", "embeddings", "zz-old-feature"]


def test_records_without_a_cost_are_priced_now_or_counted_as_unpriced(app):
    record("images", at(TODAY), model="img-1", images=2, cost=None)
    record("chat", at(TODAY), model="priced", prompt=1_000_000, completion=0, cost=None)
    record("chat", at(TODAY), model="priced", prompt=10, cost=5)  # its own estimate wins
    db.session.commit()

    prices = {"priced": Price(input=0.5, output=2.0)}
    report = usage_by_feature_and_day(30, prices=prices, today=TODAY)

    assert report.cell("chat", TODAY).cost_micro_usd == 500_000 + 5
    assert report.cell("chat", TODAY).unpriced_calls == 0
    images = report.cell("images", TODAY)
    assert (images.images, images.unpriced_calls, images.cost_micro_usd) == (2, 1, 0)


def test_an_empty_ledger_is_an_empty_report(app):
    report = usage_by_feature_and_day(7, today=TODAY)
    assert report.empty and len(report.days) == 7
    assert stacked_bars(report, "calls", report.features).empty


def test_bars_stack_bottom_up_and_scale_to_a_round_maximum(app):
    record("suggest", at(TODAY), prompt=300)
    record("chat", at(TODAY), prompt=500)
    record("chat", at(TODAY - timedelta(days=2)), prompt=100)
    db.session.commit()
    report = usage_by_feature_and_day(3, today=TODAY)

    chart = stacked_bars(report, "tokens", report.features)

    assert chart.maximum == 800  # 800 tokens, in steps of 200
    first, suggest, chat = chart.segments
    assert first.feature == "chat" and first.x < suggest.x  # two days earlier: further left
    assert suggest.x == chat.x and suggest.feature == "suggest"
    assert suggest.y + suggest.height == chart.plot_bottom  # the first feature at the bottom
    assert chat.y + chat.height == pytest.approx(suggest.y)
    assert chat.y == pytest.approx(chart.plot_top)  # the tallest bar fills the plot
    assert chat.title.endswith("Assistant: 500 tokens")
    assert [t.label for t in chart.ticks] == ["0", "200", "400", "600", "800"]


def test_a_filter_draws_only_its_feature(app):
    record("suggest", at(TODAY))
    record("chat", at(TODAY))
    db.session.commit()
    report = usage_by_feature_and_day(3, today=TODAY)
    chart = stacked_bars(report, "calls", ["chat"])
    assert [s.feature for s in chart.segments] == ["chat"]


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (0.75, 1), (3, 5), (1.2, 2), (230, 250), (0.003, 0.005)]
)
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == pytest.approx(expected)


def test_format_value():
    assert format_value(1234, "tokens") == "1,234"
    assert format_value(12.5, "cost") == "$12.50"
    assert format_value(0.0042, "cost") == "$0.0042"
