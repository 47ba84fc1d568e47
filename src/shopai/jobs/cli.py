"""`shopai worker` and `shopai jobs ...`."""

from __future__ import annotations

import importlib

import click
from flask import current_app
from flask.cli import with_appcontext

from ..extensions import db
from .models import Job, JobStatus
from .registry import registered_kinds
from .runtime import jobs_runtime
from .services import cancel_job, list_jobs, retry_job, sweep

STATUSES = [status.value for status in JobStatus]


@click.command("worker")
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=64),
    default=2,
    show_default=True,
    help="Jobs run at the same time by this process.",
)
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Also import this module (it registers more job handlers). Repeatable.",
)
@with_appcontext
def worker_command(threads: int, imports: tuple[str, ...]) -> None:
    """Run background jobs in the foreground until SIGTERM (graceful) or Ctrl-C.

    `shopai serve` starts these beside its web workers, on either queue. Run it alone
    on other machines with REDIS_URL (the SQLite queue is a file of this machine), or
    next to `make run` to add capacity to the web process's own threads.
    """
    for module in imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise click.BadParameter(
                f"cannot import {module}: {exc}", param_hint="--import"
            ) from None
    runtime = jobs_runtime(current_app)
    kinds = ", ".join(registered_kinds()) or "none"
    click.echo(f"ShopAI worker: {threads} thread(s), queue: {runtime.describe_queue()}")
    click.echo(f"Job kinds: {kinds}")
    runtime.run_worker(threads)
    click.echo("Worker stopped.")


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs: list, retry, cancel, sweep."""


def _progress(job: Job) -> str:
    if job.progress_total:
        text = f"{job.progress_done}/{job.progress_total}"
    else:
        text = str(job.progress_done) if job.progress_done else ""
    if job.progress_message:
        text = f"{text} {job.progress_message}".strip()
    return text


@jobs_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this state.")
@click.option("--kind", help="Only jobs of this kind.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=50, show_default=True)
@with_appcontext
def jobs_list_command(status: str | None, kind: str | None, limit: int) -> None:
    """The newest jobs, one line each."""
    jobs = list_jobs(status=status, kind=kind, limit=limit)
    if not jobs:
        click.echo("No jobs.")
        return
    click.echo(
        f"{'ID':>7}  {'STATUS':<9}  {'TRIES':>5}  {'UPDATED (UTC)':<19}  KIND / PROGRESS / ERROR"
    )
    for job in jobs:
        tries = f"{job.attempts}/{job.max_attempts}"
        updated = job.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        details = "  ".join(
            part for part in (job.kind, _progress(job), job.last_error or "") if part
        )
        click.echo(f"{job.id:>7}  {job.status:<9}  {tries:>5}  {updated:<19}  {details[:160]}")


@jobs_group.command("retry")
@click.argument("job_id", type=int)
@with_appcontext
def jobs_retry_command(job_id: int) -> None:
    """Queue a failed or cancelled job again, with a fresh set of attempts."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    if not retry_job(job_id):
        raise click.ClickException(
            f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried"
        )
    click.echo(f"Job {job_id} queued again.")


@jobs_group.command("cancel")
@click.argument("job_id", type=int)
@with_appcontext
def jobs_cancel_command(job_id: int) -> None:
    """Cancel a queued or running job."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    if not cancel_job(job_id):
        raise click.ClickException(f"job {job_id} is {job.status} already")
    click.echo(f"Job {job_id} cancelled.")


@jobs_group.command("sweep")
@with_appcontext
def jobs_sweep_command() -> None:
    """Re-queue jobs whose worker died and re-send lost messages (workers do this every minute)."""
    result = sweep()
    click.echo(
        f"Re-queued {result.requeued}, failed {result.failed}, re-sent {result.resent} job(s)."
    )
