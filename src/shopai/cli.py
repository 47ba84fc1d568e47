"""The `shopai` command: the Flask CLI for this app plus shop commands.

`shopai run`, `shopai db upgrade`, `shopai routes` come from Flask and
Flask-Migrate; `seed-demo` and `create-admin` are defined here.
"""

from __future__ import annotations

import sys
import time

import click
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from . import create_app
from .auth.services import AccountError, admin_emails, create_admin
from .catalog.services import catalog_has_products
from .config import ConfigError
from .demo import load_demo_catalog
from .extensions import db
from .images.generation import image_jobs_under_way, request_missing
from .images.services import collect_garbage
from .jobs.models import Job, JobStatus
from .jobs.runtime import current_runtime
from .search.tasks import schedule_refresh

FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Only seed a catalog that has no products yet.")
@with_appcontext
def seed_demo_command(if_empty: bool) -> None:
    """Load the bundled electronics catalog (safe to run again), and queue the search
    vectors and images of products that lack them (made in the background by the web
    process or a worker: the offline renderer's cards, or the configured image model)."""
    if if_empty and catalog_has_products():
        click.echo("Catalog already has products; demo data not loaded.")
    else:
        result = load_demo_catalog(progress=_progress_bar)
        click.echo(
            f"Demo catalog: {result.categories_added} categories and "
            f"{result.products_added} products added, {result.products_skipped} already present."
        )
        jobs, stopped = request_missing("cli:seed-demo")
        if jobs:
            click.echo(f"{len(jobs)} product images queued; they appear as they are drawn.")
        if stopped:
            click.echo(f"Not every image was queued: {stopped}")
    schedule_refresh()


def _progress_bar(items: list, label: str):
    return click.progressbar(items, label=label, show_pos=True)


@click.command("create-admin")
@click.option("--email", prompt=True, help="Login email of the admin.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 10 characters, not a run or a repetition. Omit to be asked without echo.",
)
@with_appcontext
def create_admin_command(email: str, password: str) -> None:
    """Create an admin account, or reset the password of an existing one."""
    try:
        user = create_admin(email, password)
    except AccountError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"Admin {user.email} is ready; sign in at /login.")


@click.group("images")
def images_group() -> None:
    """Stored product images."""


@images_group.command("gc")
@click.option(
    "--min-age-minutes",
    type=click.IntRange(min=0),
    default=60,
    show_default=True,
    help="Keep unreferenced files younger than this (an upload may be about to use them).",
)
@with_appcontext
def images_gc_command(min_age_minutes: int) -> None:
    """Delete image files that no product uses any more."""
    removed = collect_garbage(min_age_minutes * 60, progress=_progress_bar)
    click.echo(f"Removed {removed} unused image(s).")


@images_group.command("generate")
@click.option(
    "--missing",
    is_flag=True,
    required=True,
    help="Every product without an image (the only selection there is, for now).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Draw them here and show progress (with the SQLite queue); --no-wait only queues.",
)
@with_appcontext
def images_generate_command(missing: bool, wait: bool) -> None:
    """Generate images for products that have none, through the image jobs."""
    under_way = image_jobs_under_way()
    jobs, stopped = request_missing("cli:images", progress=_progress_bar)
    click.echo(f"{len(jobs)} image request(s) queued, {len(under_way)} already under way.")
    jobs += under_way
    if stopped:
        click.echo(f"Stopped early: {stopped}", err=True)
    runtime = current_runtime()
    if not jobs or not wait:
        return
    if runtime.settings.redis_url:
        click.echo("`shopai worker` processes draw them; see /admin/jobs.")
        return
    runtime.start_consumer(threads=2)
    try:
        failed = _wait_for_jobs(jobs)
    finally:
        runtime.stop_consumer()
    click.echo(f"Done: {len(jobs) - failed} drawn, {failed} failed (see /admin/jobs).")


def _wait_for_jobs(job_ids: list[int]) -> int:
    """Show a progress bar until every job has finished; returns how many failed."""
    pending = set(job_ids)
    failed = 0
    with click.progressbar(length=len(job_ids), label="Drawing", show_pos=True) as bar:
        while pending:
            db.session.rollback()  # see other threads' commits
            rows = db.session.execute(
                select(Job.id, Job.status).where(Job.id.in_(pending), Job.status.in_(FINISHED))
            ).all()
            for job_id, status in rows:
                pending.discard(job_id)
                failed += status != JobStatus.SUCCEEDED.value
            bar.update(len(rows))
            if pending:
                time.sleep(0.25)
    return failed


@click.command("admins")
@with_appcontext
def admins_command() -> None:
    """List admin accounts, or say how to create the first one."""
    emails = admin_emails()
    if emails:
        click.echo("Admins: " + ", ".join(emails) + " (sign in at /login)")
    else:
        click.echo(
            "No admin yet. Create one with `shopai create-admin` and the shop's settings "
            "(for `make run`: make admin)."
        )


cli = FlaskGroup(
    create_app=create_app,
    load_dotenv=True,
    set_debug_flag=False,  # debug comes from settings; create_app refuses it outside development
    help="ShopAI management commands (the Flask CLI for this app).",
)


def main() -> None:
    """Entry point of the `shopai` script; a bad setting ends with its message, not a traceback."""
    try:
        cli.main()
    except ConfigError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(2)
