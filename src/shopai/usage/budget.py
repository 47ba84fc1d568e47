"""Daily token budgets, read from the usage ledger (the one record of what was spent)."""

from __future__ import annotations

import time as clock
from datetime import datetime, time

from flask import current_app
from sqlalchemy import func, select

from ..db_types import utcnow
from ..extensions import db
from .models import UsageRecord

SPENT_KEY = "shopai.tokens_spent"


def start_of_day() -> datetime:
    """Midnight UTC today: budgets are per UTC day, the same for every process."""
    now = utcnow()
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def tokens_spent_today(feature: str) -> int:
    """Prompt and completion tokens of `feature` since midnight UTC. The ledger is written
    by a background thread, so the last second's calls may be missing: a budget is a
    ceiling that can be passed by what is in flight, never a hard stop mid-answer."""
    spent = db.session.scalar(
        select(
            func.coalesce(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0)
        ).where(UsageRecord.feature == feature, UsageRecord.created_at >= start_of_day())
    )
    return int(spent or 0)


def recently_spent_today(feature: str, max_age: float) -> int:
    """`tokens_spent_today`, as this process read it at most `max_age` seconds ago.

    The sum grows with the day's records and the assistant reads it before every
    answer, while its shopper waits for the first word; the ledger itself trails by
    up to a second (see above), so a sum a second old keeps the same promise."""
    read: dict[str, tuple[float, datetime, int]] = current_app.extensions.setdefault(SPENT_KEY, {})
    now, day = clock.monotonic(), start_of_day()
    entry = read.get(feature)
    if entry is not None and now - entry[0] <= max_age and entry[1] == day:
        return entry[2]
    spent = tokens_spent_today(feature)
    read[feature] = (now, day, spent)
    return spent
