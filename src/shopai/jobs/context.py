"""What a running handler sees: its job, progress reporting, and cancellation.

The lease is what makes a dead worker's job run again, so it must keep moving while
the handler is alive. A heartbeat thread extends it every third of the lease while
the handler runs (a handler waiting minutes on one model call still holds its job),
and every `progress()` call extends it too. When the worker process dies, both stop,
the lease runs out, and the sweep hands the job to another worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from .models import MESSAGE_MAX, Job, JobStatus

log = logging.getLogger("shopai.jobs")

Clock = Callable[[], datetime]


class JobCancelled(Exception):
    """The job is no longer this worker's to run: an admin cancelled it, or its lease
    ran out and another worker took it over. Raised by `JobContext.progress` and
    `JobContext.raise_if_cancelled`; the runner stops quietly and writes nothing."""


class PermanentJobError(Exception):
    """A failure no retry can fix (a malformed payload, a product that no longer
    exists): the job fails at once instead of spending its remaining attempts."""


class JobContext:
    """Handed to every handler. Its writes use their own short transactions on their
    own connection, so reporting progress never commits (or waits on) the handler's
    session; commit your own work first, then report it."""

    def __init__(
        self,
        *,
        job_id: int,
        kind: str,
        attempt: int,
        max_attempts: int,
        owner: str,
        engine: Engine,
        lease_seconds: float,
        clock: Clock,
    ) -> None:
        self.job_id = job_id
        self.kind = kind
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.owner = owner
        self._engine = engine
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._lost = threading.Event()

    def _owned(self) -> list:
        """WHERE clauses true only while this claim still owns the row."""
        return [
            Job.id == self.job_id,
            Job.status == JobStatus.RUNNING.value,
            Job.lease_owner == self.owner,
        ]

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Record how far the job got (shown on /admin/jobs) and extend the lease.

        Raises `JobCancelled` when the job was cancelled or taken over, so a loop
        that reports progress also stops promptly."""
        now = self._clock()
        with self._engine.begin() as connection:
            result = connection.execute(
                update(Job)
                .where(*self._owned())
                .values(
                    progress_done=max(0, int(done)),
                    progress_total=None if total is None else max(0, int(total)),
                    progress_message=message[:MESSAGE_MAX] or None,
                    lease_until=now + self._lease,
                    updated_at=now,
                )
            )
        if result.rowcount == 0:
            self._lost.set()
            raise JobCancelled(f"job {self.job_id} was cancelled or taken over")

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (or another worker took it over); a
        handler checks this between steps and returns."""
        if self._lost.is_set():
            return True
        with self._engine.connect() as connection:
            row = connection.execute(
                select(Job.status, Job.lease_owner).where(Job.id == self.job_id)
            ).first()
        if row is None or row.status != JobStatus.RUNNING.value or row.lease_owner != self.owner:
            self._lost.set()
        return self._lost.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled(f"job {self.job_id} was cancelled or taken over")

    def heartbeat(self) -> bool:
        """Extend the lease; False (and `cancelled` from now on) once the row is not ours.

        A database that is briefly unavailable is not a lost job: the next beat
        tries again, and only an expired lease hands the job to someone else."""
        now = self._clock()
        try:
            with self._engine.begin() as connection:
                result = connection.execute(
                    update(Job)
                    .where(*self._owned())
                    .values(lease_until=now + self._lease, updated_at=now)
                )
        except SQLAlchemyError:
            log.warning("job %s: heartbeat failed, will retry", self.job_id, exc_info=True)
            return True
        if result.rowcount == 0:
            self._lost.set()
            return False
        return True


class Heartbeat:
    """Extends a running job's lease from a side thread until stopped."""

    def __init__(self, context: JobContext, interval: float) -> None:
        self._context = context
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"job-{context.job_id}-heartbeat", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._context.heartbeat():
                return
