"""Background jobs that never lose work: Huey moves messages, a `Job` row is the truth.

Every feature starts background work the same way::

    from shopai.jobs import JobContext, enqueue, job_handler

    @job_handler("embeddings.product")
    def embed_product(ctx: JobContext, payload: dict) -> None:
        ...  # idempotent: upsert rows, write files under a temp name then rename
        ctx.progress(1, 1)

    enqueue("embeddings.product", {"product_id": 7}, key=f"embed:7:{content_hash}")

How it holds up:

- `enqueue` commits the row, then sends a Huey message that only says "look at job N".
  `add_job` does the same inside the caller's unit of work: the row is committed with
  it (a saved product and its jobs, in one commit) and the message sent after.
  With a `key`, enqueueing it again returns the same job: unchanged while it is
  queued, running or succeeded; queued again with fresh attempts if it failed or was
  cancelled (say, while a backend was down), so the same work runs again.
- A worker claims the job with one conditional UPDATE (queued and due, or running on
  an expired lease), so duplicate messages and several workers never run it twice at
  once. Each claim gets a fresh `lease_owner` token, and only that claim may write
  (progress, result): a run that was cancelled or taken over cannot overwrite a newer one.
- While a handler runs, a heartbeat extends its lease. A worker that dies stops the
  heartbeat; the sweep (at consumer start, then every minute) re-queues the job, and
  re-sends the message of every queued job overdue by a lease (a lost message).
- A failure is retried with capped exponential backoff and jitter; the last one (or a
  `PermanentJobError`) marks the job failed with a readable, bounded, redacted reason.

Rules for handlers: each job runs in its own app context and session; never hold a
database transaction open while waiting on a model (commit or close the session
first); be idempotent, since a job may run again after a crash. Define them in a module
that `create_app` imports (the feature package's `__init__`), so the web process and
every `shopai worker` know the same kinds; `shopai worker --import MODULE` adds more.
"""

from .context import JobCancelled, JobContext, PermanentJobError
from .models import Job, JobStatus
from .registry import job_handler, registered_kinds
from .runtime import JobRuntime, init_jobs, jobs_runtime
from .services import (
    DEFAULT_MAX_ATTEMPTS,
    SweepResult,
    add_job,
    cancel_job,
    enqueue,
    execute_job,
    job_dict,
    list_jobs,
    retry_job,
    schedule_periodic,
    sweep,
)
from .views import bp

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobRuntime",
    "JobStatus",
    "PermanentJobError",
    "SweepResult",
    "add_job",
    "bp",
    "cancel_job",
    "enqueue",
    "execute_job",
    "init_jobs",
    "job_dict",
    "job_handler",
    "jobs_runtime",
    "list_jobs",
    "registered_kinds",
    "retry_job",
    "schedule_periodic",
    "sweep",
]
