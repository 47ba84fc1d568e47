"""Writing usage events from the AI client into the ledger."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..ai.types import UsageEvent
from .models import UsageRecord

log = logging.getLogger(__name__)


def record_from_event(event: UsageEvent) -> UsageRecord:
    return UsageRecord(
        feature=event.feature,
        backend=event.backend,
        model=event.model[:128],
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        images=event.images,
        latency_ms=round(event.latency_ms),
        cost_micro_usd=None if event.estimated_cost is None else round(event.estimated_cost * 1e6),
        who=event.who[:64] if event.who else None,
        ok=event.ok,
        error=event.error,
    )


class UsageLedger:
    """A usage sink with its own short session, so recording a call never commits (or
    rolls back) the caller's unit of work, and works outside requests (workers, CLI)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, event: UsageEvent) -> None:
        try:
            with Session(self.engine) as session:
                session.add(record_from_event(event))
                session.commit()
        except Exception:
            # Losing one ledger row must not break the feature the shopper is using.
            log.exception("could not record AI usage for %s", event.feature)
