"""Daily token budgets, read from the usage ledger (the one record of what was spent)."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import func, select

from ..db_types import utcnow
from ..extensions import db
from .models import UsageRecord


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
