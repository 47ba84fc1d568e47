"""Writing usage events from the AI client into the ledger."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ..ai.types import UsageEvent
from ..background import BackgroundWriter
from .models import UsageRecord

log = logging.getLogger(__name__)

WRITER_NAME = "shopai-usage-writer"


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


class UsageLedger(BackgroundWriter[UsageEvent]):
    """A usage sink that only hands events over; a writer thread of its own stores them.

    The AI client records usage from wherever a call ends, including a stream's
    garbage-collection finalizer, which can run on any thread, in the middle of that
    thread's own database session, or at interpreter exit. So calling the ledger does
    nothing but queue the event (see `background.BackgroundWriter`); the writer commits
    batches in its own session, so recording never commits or rolls back a caller's
    unit of work."""

    thread_name = WRITER_NAME

    def write(self, batch: list[UsageEvent]) -> None:
        try:
            self._write(batch)
        except Exception:
            # Retry one by one so that one bad event costs only its own row.
            for event in batch:
                self._write_one(event)

    def _write(self, events: list[UsageEvent]) -> None:
        if events:
            with Session(self.engine) as session:
                session.add_all(record_from_event(event) for event in events)
                session.commit()

    def _write_one(self, event: UsageEvent) -> None:
        try:
            self._write([event])
        except Exception:
            # Losing one ledger row must not break the feature, nor stop the writer.
            log.exception("could not record AI usage for %s", event.feature)
