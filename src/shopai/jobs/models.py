"""The `Job` row: the truth about a unit of background work.

Huey removes a message from its queue when a worker takes it, so a worker that dies
mid-job takes the message with it. The row survives: its status, attempt count and
lease say whether the work is done, in progress, or due to be run again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model

KIND_MAX = 64
KEY_MAX = 200
ERROR_MAX = 1000
MESSAGE_MAX = 200
OWNER_MAX = 64


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# An admin may send these back to the queue; a job that ran to success is not re-run
# by hand (enqueue a new one with a new key instead).
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
# Work that has not finished yet and can still be stopped.
CANCELLABLE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(Model):
    """One unit of background work.

    `lease_owner` is a fencing token, new for every claim ("host:pid:random"): a
    worker only writes progress or a result while the row is still `running` under
    its own token, so a worker whose lease expired (its job taken over), or whose job
    was cancelled and retried meanwhile, cannot overwrite the newer run.
    """

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_status_run_after", "status", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_MAX), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(OWNER_MAX))
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int | None]
    progress_message: Mapped[str | None] = mapped_column(String(MESSAGE_MAX))
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status}>"
