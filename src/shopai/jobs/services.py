"""Enqueueing, claiming, running and finishing jobs: every state change is one
conditional UPDATE on the `job` row, so the row stays the truth whatever Huey does.

Huey delivers messages at most once per send but may deliver duplicates (a sweep
re-sends, an admin retries while an old delayed message is still scheduled), and it
loses the message of a worker that dies. So a message only says "look at job N":
the claim decides, atomically, whether this worker runs it now.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db
from ..request_log import redact
from .context import Heartbeat, JobCancelled, JobContext, PermanentJobError
from .models import (
    CANCELLABLE,
    ERROR_MAX,
    KEY_MAX,
    RETRYABLE,
    Job,
    JobStatus,
)
from .registry import handler_for, periodic_kinds, priority_for
from .runtime import JobRuntime, current_runtime

log = logging.getLogger("shopai.jobs")

DEFAULT_MAX_ATTEMPTS = 5
# Payloads name the work (ids, parameters), they do not carry it: rows stay small
# and the admin page stays fast.
PAYLOAD_MAX_BYTES = 16_384
# Rows a sweep touches per pass; the next pass (a minute later) takes the rest.
SWEEP_BATCH = 500


def _changed(statement: Executable) -> int:
    """Run an UPDATE in the session; how many rows it changed (0 means the
    condition no longer held: someone else got there first)."""
    result = cast(CursorResult[Any], db.session.execute(statement))
    return result.rowcount


def retry_delay(attempt: int, base: float, cap: float, unit_random: float) -> float:
    """Seconds before attempt `attempt + 1`: exponential, capped, with "equal jitter"
    (half fixed, half random) so a burst of jobs failing together (a model server
    restarting) does not come back as a burst. `unit_random` is in [0, 1)."""
    exponential = min(cap, base * 2 ** max(0, attempt - 1))
    return exponential / 2 + exponential / 2 * unit_random


def describe_error(error: BaseException) -> str:
    """One readable line for `last_error`: type and message, secrets redacted, bounded."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = re.sub(r"\s+", " ", redact(text)).strip()
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def _check_payload(payload: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError("a job payload is a dict")
    encoded = json.dumps(payload, allow_nan=False)  # TypeError/ValueError: not JSON
    if len(encoded.encode()) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"a job payload is at most {PAYLOAD_MAX_BYTES} bytes of JSON")
    return json.loads(encoded)  # what the handler will see: tuples become lists


def _by_key(key: str) -> Job | None:
    return db.session.scalar(select(Job).where(Job.idempotency_key == key))


def enqueue(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    delay: float = 0.0,
) -> Job:
    """Record a job and send its message; the one way every feature starts work.

    With `key`, a second enqueue of the same key (also from another process at the
    same moment: the unique index decides) returns the existing job instead of a new
    one. A queued, running or succeeded job is returned unchanged (no new message).
    A failed or cancelled one is queued again first, as the admin "retry" does: fresh
    attempts (this call's `max_attempts`), due after this call's `delay`, its
    `last_error` kept until the next outcome, its payload unchanged (the key names
    the work). So work that failed while a backend was down runs again the next time
    it is enqueued; one conditional UPDATE decides, so of several processes doing
    this at once exactly one re-queues it and sends its message. Put a version in the
    key (e.g. a content hash) when new input should mean new work.

    The session is committed first, so finish your unit of work before enqueueing
    (or use `add_job`, which makes the job part of it). If the message cannot be sent
    (Redis down), the job is still recorded and the sweep sends it later; enqueue
    does not fail for that.
    """
    _check_job(kind, key, max_attempts, delay)
    db.session.commit()
    job = add_job(kind, payload, key=key, max_attempts=max_attempts, delay=delay)
    db.session.commit()  # and the message goes out (see `_send_after_commit`)
    return job


def add_job(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    delay: float = 0.0,
) -> Job:
    """`enqueue` as part of the caller's unit of work: the job row is written in the
    session's transaction, and its message is sent once that transaction commits
    (dropped if it rolls back, with the row). So work and the job it calls for are
    committed together, or not at all (a saved product always has its jobs), and a
    request that queues several jobs commits once. Nothing is committed here.

    Keys behave as in `enqueue`. The unique index decides whether a key is new, also
    against a concurrent transaction, without disturbing the caller's (INSERT ... ON
    CONFLICT DO NOTHING, or a savepoint on databases without it)."""
    _check_job(kind, key, max_attempts, delay)
    data = _check_payload({} if payload is None else payload)
    runtime = current_runtime()
    if key is not None and (existing := _by_key(key)) is not None:
        return _enqueued_again(existing, runtime, delay=delay, max_attempts=max_attempts)
    now = runtime.clock()
    values: dict[str, Any] = {
        "kind": kind,
        "payload": data,
        "status": JobStatus.QUEUED.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": now + timedelta(seconds=delay),
        "idempotency_key": key,
        "created_at": now,
        "updated_at": now,
        "progress_done": 0,
    }
    job = _insert_job(values)
    if job is None:  # another transaction recorded the key since our look-up
        existing = _by_key(key) if key is not None else None
        if existing is None:
            raise RuntimeError(f"job key {key!r} was taken, yet no job holds it")
        return _enqueued_again(existing, runtime, delay=delay, max_attempts=max_attempts)
    log.info("job %s (%s) queued", job.id, kind)
    _send_after_commit(runtime, job.id, delay=delay, priority=priority_for(kind))
    return job


def _check_job(kind: str, key: str | None, max_attempts: int, delay: float) -> None:
    if handler_for(kind) is None:
        raise LookupError(f"no handler is registered for job kind {kind!r}")
    if key is not None and not 0 < len(key) <= KEY_MAX:
        raise ValueError(f"an idempotency key is 1-{KEY_MAX} characters")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if delay < 0:
        raise ValueError("delay must not be negative")


def _insert_job(values: dict[str, Any]) -> Job | None:
    """Insert a job row in the session's transaction; None when its key is taken.

    A key taken by a concurrent transaction must not roll back the caller's work,
    so the unique index is asked without raising: ON CONFLICT DO NOTHING where the
    database has it (SQLite, PostgreSQL), a savepoint elsewhere."""
    if values["idempotency_key"] is None:  # nothing to conflict with
        job = Job(**values)
        db.session.add(job)
        db.session.flush()
        return job
    dialect = db.engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = (sqlite if dialect == "sqlite" else postgresql).insert(Job)
        statement = (
            insert.values(**values)
            .on_conflict_do_nothing(index_elements=[Job.idempotency_key])
            .returning(Job)
        )
        return db.session.scalars(statement).first()
    job = Job(**values)
    try:
        with db.session.begin_nested():
            db.session.add(job)
    except IntegrityError:
        return None
    return job


# Messages of jobs added in a session's open transaction: (runtime, job id, delay,
# priority), sent when it commits, dropped when it ends otherwise.
_PENDING = "shopai.jobs.pending"


def _send_after_commit(runtime: JobRuntime, job_id: int, *, delay: float, priority: int) -> None:
    """Send the message once the row is committed: a worker taking it earlier would
    find no job (or the old state) and skip it, leaving it to the sweep."""
    db.session.info.setdefault(_PENDING, []).append((runtime, job_id, delay, priority))


def _send_pending(session: Session) -> None:
    """after_commit: the rows are visible to every worker now. (A savepoint's commit
    fires this too: its rows are not committed yet, so its messages wait.)"""
    if session.in_nested_transaction():
        return
    pending: list[tuple[JobRuntime, int, float, int]] = session.info.pop(_PENDING, [])
    by_runtime: dict[int, tuple[JobRuntime, list[tuple[int, float, int]]]] = {}
    for runtime, job_id, delay, priority in pending:
        by_runtime.setdefault(id(runtime), (runtime, []))[1].append((job_id, delay, priority))
    for runtime, messages in by_runtime.values():
        runtime.send_many(messages)


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    """after_transaction_end: a root transaction that ended without its after_commit
    (a rollback, a closed session) took its job rows with it; so go their messages.
    A rolled-back savepoint's messages stay: a message for a missing job is skipped."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


if not event.contains(Session, "after_commit", _send_pending):
    event.listen(Session, "after_commit", _send_pending)
    event.listen(Session, "after_transaction_end", _drop_pending)


def _requeue(job_id: int, now: datetime, *, delay: float = 0.0, **values: Any) -> bool:
    """Send a failed or cancelled job back to the queue with a fresh set of attempts
    (and progress), and commit. See `_requeue_in_session`."""
    changed = _requeue_in_session(job_id, now, delay=delay, **values)
    db.session.commit()
    return changed


def _requeue_in_session(job_id: int, now: datetime, *, delay: float = 0.0, **values: Any) -> bool:
    """One conditional UPDATE in the session's transaction, so of two processes doing
    this at once (an enqueue of its key, an admin's retry) one does it; and a job
    another process has re-queued (and maybe a worker claimed) meanwhile is left
    alone. `last_error` is kept: the reason of the last run stays readable until the
    next outcome."""
    changed = _changed(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in RETRYABLE]))
        .values(
            status=JobStatus.QUEUED.value,
            attempts=0,
            run_after=now + timedelta(seconds=delay),
            lease_until=None,
            lease_owner=None,
            started_at=None,
            finished_at=None,
            progress_done=0,
            progress_total=None,
            progress_message=None,
            updated_at=now,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return changed == 1


def _enqueued_again(job: Job, runtime: JobRuntime, *, delay: float, max_attempts: int) -> Job:
    """The job already recorded under an enqueued key: re-queued (its message sent
    when the transaction commits) if it failed or was cancelled, otherwise as it is.
    A re-queued row is expired: read again, it is as the database has it (queued by
    this call, or whatever another process made of it meanwhile)."""
    status = job.status
    if status not in RETRYABLE:
        return job
    if _requeue_in_session(job.id, runtime.clock(), delay=delay, max_attempts=max_attempts):
        log.info(
            "job %s (%s) queued again: its key was enqueued after it %s", job.id, job.kind, status
        )
        _send_after_commit(runtime, job.id, delay=delay, priority=priority_for(job.kind))
    db.session.expire(job)
    return job


def _send(runtime: JobRuntime, job_id: int, delay: float = 0.0) -> None:
    """`runtime.send` with the priority of the job's kind."""
    kind = db.session.scalar(select(Job.kind).where(Job.id == job_id))
    runtime.send(job_id, delay=delay, priority=priority_for(kind or ""))


def new_owner() -> str:
    """A fencing token that also says where the job runs (shown in the JSON)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Claim:
    owner: str
    attempt: int
    max_attempts: int
    kind: str
    payload: dict[str, Any]


def claim(job_id: int, runtime: JobRuntime) -> Claim | None:
    """Take the job if it is queued and due, or running on an expired lease (its
    worker died). One UPDATE decides, so two workers holding a message for the same
    job (duplicates, or several workers) never both run it."""
    now = runtime.clock()
    lease_until = now + timedelta(seconds=runtime.settings.lease_seconds)
    owner = new_owner()
    row = db.session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                (Job.status == JobStatus.QUEUED.value) & (Job.run_after <= now),
                (Job.status == JobStatus.RUNNING.value)
                & (Job.lease_until < now)
                & (Job.attempts < Job.max_attempts),
            ),
        )
        .values(
            status=JobStatus.RUNNING.value,
            attempts=Job.attempts + 1,
            lease_until=lease_until,
            lease_owner=owner,
            started_at=now,
            finished_at=None,
            updated_at=now,
        )
        .returning(Job.attempts, Job.max_attempts, Job.kind, Job.payload)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    if row is None:
        return None
    return Claim(
        owner=owner,
        attempt=row.attempts,
        max_attempts=row.max_attempts,
        kind=row.kind,
        payload=row.payload,
    )


def _finish(job_id: int, owner: str, **values: Any) -> bool:
    """Write an outcome only while this claim still owns the row (fencing)."""
    changed = _changed(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.RUNNING.value,
            Job.lease_owner == owner,
        )
        .values(lease_until=None, lease_owner=None, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return changed == 1


def _resend_if_early(job_id: int, runtime: JobRuntime) -> None:
    """A message that arrived before the job's run_after (a clock ahead of the
    database's, a retry rescheduled by hand) is sent again for the right time,
    so the job is not left to the sweep."""
    job = db.session.get(Job, job_id)
    if job is not None and job.status == JobStatus.QUEUED.value:
        wait = (job.run_after - runtime.clock()).total_seconds()
        if wait > 0:
            runtime.send(job_id, delay=wait, priority=priority_for(job.kind))
    db.session.rollback()


def execute_job(job_id: int) -> str:
    """Run job `job_id` if this worker can claim it; the Huey task calls this inside
    a fresh app context (so a fresh session). Returns what happened: "skipped",
    "succeeded", "retrying", "failed" or "lost" (cancelled or taken over meanwhile)."""
    runtime = current_runtime()
    taken = claim(job_id, runtime)
    if taken is None:
        _resend_if_early(job_id, runtime)
        return "skipped"
    log.info(
        "job %s (%s) attempt %s/%s started", job_id, taken.kind, taken.attempt, taken.max_attempts
    )
    context = JobContext(
        job_id=job_id,
        kind=taken.kind,
        attempt=taken.attempt,
        max_attempts=taken.max_attempts,
        owner=taken.owner,
        engine=db.engine,
        lease_seconds=runtime.settings.lease_seconds,
        clock=runtime.clock,
    )
    handler = handler_for(taken.kind)
    error: BaseException | None = None
    try:
        with Heartbeat(context, interval=runtime.settings.lease_seconds / 3):
            if handler is None:
                raise LookupError(f"no handler is registered for job kind {taken.kind!r}")
            handler(context, taken.payload)
    except JobCancelled:
        db.session.rollback()
        log.info("job %s stopped: cancelled or taken over", job_id)
        return "lost"
    except Exception as exc:
        error = exc
    db.session.rollback()  # whatever the handler left half-done is not ours to commit

    now = runtime.clock()
    if error is None:
        if _finish(
            job_id,
            taken.owner,
            status=JobStatus.SUCCEEDED.value,
            finished_at=now,
            updated_at=now,
            last_error=None,
        ):
            log.info("job %s (%s) succeeded", job_id, taken.kind)
            return "succeeded"
        return "lost"

    reason = describe_error(error)
    final = isinstance(error, PermanentJobError) or taken.attempt >= taken.max_attempts
    if final:
        log.warning("job %s (%s) failed: %s", job_id, taken.kind, reason, exc_info=error)
        done = _finish(
            job_id,
            taken.owner,
            status=JobStatus.FAILED.value,
            finished_at=now,
            updated_at=now,
            last_error=reason,
        )
        return "failed" if done else "lost"
    wait = retry_delay(
        taken.attempt,
        runtime.settings.retry_base_seconds,
        runtime.settings.retry_max_seconds,
        runtime.random(),
    )
    log.warning(
        "job %s (%s) attempt %s failed, retrying in %.0fs: %s",
        job_id,
        taken.kind,
        taken.attempt,
        wait,
        reason,
    )
    requeued = _finish(
        job_id,
        taken.owner,
        status=JobStatus.QUEUED.value,
        run_after=now + timedelta(seconds=wait),
        updated_at=now,
        last_error=reason,
    )
    if not requeued:
        return "lost"
    _send(runtime, job_id, delay=wait)
    return "retrying"


def retry_job(job_id: int) -> bool:
    """Send a failed or cancelled job back to the queue with a fresh set of attempts.
    False when the job is not in a state that can be retried."""
    runtime = current_runtime()
    if not _requeue(job_id, runtime.clock()):
        return False
    log.info("job %s re-queued by hand", job_id)
    _send(runtime, job_id)
    return True


def cancel_job(job_id: int) -> bool:
    """Stop a queued or running job. A running handler finds out at its next
    `progress()` or `cancelled` check (and within a heartbeat at most, its result
    is no longer written). False when the job had already finished."""
    now = current_runtime().clock()
    changed = _changed(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in CANCELLABLE]))
        .values(
            status=JobStatus.CANCELLED.value,
            lease_until=None,
            lease_owner=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if changed == 1:
        log.info("job %s cancelled", job_id)
    return changed == 1


@dataclass(frozen=True)
class SweepResult:
    requeued: int  # running jobs whose worker stopped renewing the lease
    failed: int  # the same, on their last attempt
    resent: int  # queued jobs whose message may have been lost


def sweep() -> SweepResult:
    """Repair what crashes leave behind; runs once when a consumer starts and then
    every minute (a Huey periodic task). Several sweeps at once are harmless:
    every change is conditional, and a duplicate message is a no-op claim."""
    runtime = current_runtime()
    now = runtime.clock()
    requeued = failed = 0
    expired = db.session.execute(
        select(Job.id, Job.attempts, Job.max_attempts, Job.lease_owner)
        .where(Job.status == JobStatus.RUNNING.value, Job.lease_until < now)
        .order_by(Job.lease_until)
        .limit(SWEEP_BATCH)
    ).all()
    db.session.rollback()
    for job_id, attempts, max_attempts, owner in expired:
        last = attempts >= max_attempts
        values: dict[str, Any] = {
            "lease_until": None,
            "lease_owner": None,
            "updated_at": now,
            "last_error": "the worker stopped responding (its lease expired)",
        }
        if last:
            values.update(status=JobStatus.FAILED.value, finished_at=now)
        else:
            values.update(status=JobStatus.QUEUED.value, run_after=now)
        changed = _changed(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.RUNNING.value,
                Job.lease_owner == owner,
                Job.lease_until < now,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if changed != 1:
            continue
        if last:
            failed += 1
            log.warning("job %s failed: its worker stopped on the last attempt", job_id)
        else:
            requeued += 1
            log.warning("job %s re-queued: its worker stopped responding", job_id)
            _send(runtime, job_id)
    resent = _resend_lost(runtime, now)
    return SweepResult(requeued=requeued, failed=failed, resent=resent)


def schedule_periodic() -> int:
    """Enqueue each periodic kind (`job_handler(kind, every=...)`) once per period;
    runs every minute beside the sweep. The key names the period, so another process
    doing the same in the same period finds the job already there. Returns how many
    were enqueued."""
    now = current_runtime().clock()
    scheduled = 0
    for kind, every in sorted(periodic_kinds().items()):
        period = int(now.timestamp() // every.total_seconds())
        key = f"periodic:{kind}:{period}"
        if _by_key(key) is None:
            enqueue(kind, {}, key=key)
            scheduled += 1
    return scheduled


def _resend_lost(runtime: JobRuntime, now: datetime) -> int:
    """Queued jobs overdue by a lease and untouched for one: their message may be
    lost (sent to a Redis that lost it, enqueue while the queue was unreachable).

    Each gets a new message, oldest first, at most SWEEP_BATCH per pass and at most
    once per lease (its updated_at is touched, in the same conditional UPDATE that
    picks it, so concurrent sweeps do not both send). The queue's counts cannot
    say which jobs still have a message: after an outage it holds many future
    retry messages of jobs that are not due, which would hide the lost ones. A job
    whose message was only slow (a long backlog) gets a duplicate, and the claim
    makes that a no-op."""
    stale_before = now - timedelta(seconds=runtime.settings.lease_seconds)
    stale = (
        Job.status == JobStatus.QUEUED.value,
        Job.run_after <= stale_before,
        Job.updated_at <= stale_before,
    )
    oldest: Sequence[int] = db.session.scalars(
        select(Job.id).where(*stale).order_by(Job.run_after, Job.id).limit(SWEEP_BATCH)
    ).all()
    if not oldest:
        db.session.rollback()
        return 0
    touched = set(
        db.session.scalars(
            update(Job)
            .where(Job.id.in_(oldest), *stale)
            .values(updated_at=now)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    ids = [job_id for job_id in oldest if job_id in touched]
    for job_id in ids:
        _send(runtime, job_id)
    if ids:
        log.warning("re-sent the messages of %s overdue queued job(s)", len(ids))
    return len(ids)


def list_jobs(
    *, status: str | None = None, kind: str | None = None, limit: int = 100
) -> Sequence[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    return db.session.scalars(query).all()


def job_kinds() -> list[str]:
    """Kinds present in the table: the admin page's filter choices."""
    return list(db.session.scalars(select(Job.kind).distinct().order_by(Job.kind)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def job_dict(job: Job, *, payload: bool = False) -> dict[str, Any]:
    """The JSON shape of a job (API and live admin page). The payload is left out of
    listings: it may be long, and listings are polled."""
    data: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "message": job.progress_message or "",
        },
        "last_error": job.last_error or "",
        "idempotency_key": job.idempotency_key,
        "run_after": _iso(job.run_after),
        "lease_until": _iso(job.lease_until),
        "worker": job.lease_owner,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
        "can_retry": job.status in RETRYABLE,
        "can_cancel": job.status in CANCELLABLE,
    }
    if payload:
        data["payload"] = job.payload
    return data
