from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model


class UsageRecord(Model):
    """One model call. Cost is kept in millionths of a dollar: exact on every database."""

    __tablename__ = "usage_record"
    __table_args__ = (Index("ix_usage_record_feature_created", "feature", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    feature: Mapped[str] = mapped_column(String(32))
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    images: Mapped[int] = mapped_column(default=0)
    latency_ms: Mapped[int] = mapped_column(default=0)
    cost_micro_usd: Mapped[int | None]
    who: Mapped[str | None] = mapped_column(String(64), index=True)
    ok: Mapped[bool] = mapped_column(default=True)
    error: Mapped[str | None] = mapped_column(String(500))

    @property
    def estimated_cost(self) -> float | None:
        return None if self.cost_micro_usd is None else self.cost_micro_usd / 1e6
