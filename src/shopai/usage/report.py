"""Model calls, tokens and estimated cost per feature per day, from the usage ledger.

Cost: a record's own estimate wins (the client prices each call with
`SHOPAI_AI_PRICES` as they were when it was made; free embedded backends record 0).
A record made while its model had no price carries none; it is estimated here from
the prices configured now, and when there are none either, its calls are counted as
unpriced, so an empty price table never shows a reassuring $0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from ..ai.settings import FEATURES, Price
from ..db_types import utcnow
from ..extensions import db
from .models import UsageRecord

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Features the client knows, in the order the chart stacks them; anything else the
# ledger holds (an old feature's rows) follows in alphabetical order.
KNOWN_FEATURES: tuple[str, ...] = FEATURES


@dataclass
class DayUsage:
    """One feature on one UTC day."""

    calls: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0
    cost_micro_usd: int = 0
    unpriced_calls: int = 0  # calls whose cost nobody could estimate

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float:
        """Estimated USD (of the priced calls)."""
        return self.cost_micro_usd / 1e6

    def add(self, other: DayUsage) -> None:
        self.calls += other.calls
        self.failed += other.failed
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.images += other.images
        self.cost_micro_usd += other.cost_micro_usd
        self.unpriced_calls += other.unpriced_calls

    def metric(self, name: str) -> float:
        return {"calls": self.calls, "tokens": self.tokens, "cost": self.cost}[name]


@dataclass
class UsageReport:
    days: list[date]
    features: list[str]
    cells: dict[tuple[str, date], DayUsage] = field(default_factory=dict)

    def cell(self, feature: str, day: date) -> DayUsage:
        return self.cells.get((feature, day)) or DayUsage()

    def day_total(self, day: date, features: list[str] | None = None) -> DayUsage:
        total = DayUsage()
        for feature in features or self.features:
            total.add(self.cell(feature, day))
        return total

    def feature_total(self, feature: str) -> DayUsage:
        total = DayUsage()
        for day in self.days:
            total.add(self.cell(feature, day))
        return total

    def total(self, features: list[str] | None = None) -> DayUsage:
        total = DayUsage()
        for feature in features or self.features:
            total.add(self.feature_total(feature))
        return total

    @property
    def empty(self) -> bool:
        return not self.cells


def _utc_day(column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, on SQLite (stored as UTC text) and
    PostgreSQL (timestamptz, whose `date()` would follow the session's time zone)."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def usage_by_feature_and_day(
    days: int = DEFAULT_DAYS,
    prices: Mapping[str, Price] | None = None,
    today: date | None = None,
) -> UsageReport:
    """The last `days` UTC days up to and including `today`, every day present (a
    day without calls is a gap in the chart, not a missing bar)."""
    days = min(max(days, 1), MAX_DAYS)
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=utcnow().tzinfo)
    until = datetime.combine(today + timedelta(days=1), time.min, tzinfo=utcnow().tzinfo)
    record = UsageRecord
    unpriced = record.cost_micro_usd.is_(None)
    day = _utc_day(record.created_at).label("day")
    query = (
        select(
            record.feature,
            record.model,
            day,
            func.count(),
            func.sum(case((record.ok.is_(False), 1), else_=0)),
            func.sum(record.prompt_tokens),
            func.sum(record.completion_tokens),
            func.sum(record.images),
            func.coalesce(func.sum(record.cost_micro_usd), 0),
            func.sum(case((unpriced, 1), else_=0)),
            func.sum(case((unpriced, record.prompt_tokens), else_=0)),
            func.sum(case((unpriced, record.completion_tokens), else_=0)),
            func.sum(case((unpriced, record.images), else_=0)),
        )
        .where(record.created_at >= since, record.created_at < until)
        .group_by(record.feature, record.model, day)
    )
    prices = prices or {}
    cells: dict[tuple[str, date], DayUsage] = defaultdict(DayUsage)
    for row in db.session.execute(query):
        (feature, model, raw_day, calls, failed, prompt, completion, images, cost) = row[:9]
        (n_unpriced, unpriced_prompt, unpriced_completion, unpriced_images) = row[9:]
        usage = DayUsage(
            calls=calls,
            failed=int(failed or 0),
            prompt_tokens=int(prompt or 0),
            completion_tokens=int(completion or 0),
            images=int(images or 0),
            cost_micro_usd=int(cost or 0),
        )
        if n_unpriced:
            price = prices.get(model)
            if price is None:
                usage.unpriced_calls = int(n_unpriced)
            else:
                estimate = price.cost(
                    int(unpriced_prompt or 0),
                    int(unpriced_completion or 0),
                    int(unpriced_images or 0),
                )
                usage.cost_micro_usd += round(estimate * 1e6)
        cells[feature, _as_date(raw_day)].add(usage)
    seen = {feature for feature, _ in cells}
    features = list(KNOWN_FEATURES) + sorted(seen - set(KNOWN_FEATURES))
    return UsageReport(
        days=[first + timedelta(days=n) for n in range(days)],
        features=features,
        cells=dict(cells),
    )
