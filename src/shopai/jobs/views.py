"""/admin/jobs (the live table) and the admin-only JSON endpoints it polls.

The page works without JavaScript (filters are a GET form, retry and cancel are
POST forms with a CSRF token); `static/js/jobs.js` keeps the rows current by polling
`GET /api/jobs` and sends retry/cancel with the X-CSRFToken header.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..auth.decorators import admin_required, api_admin_required
from ..errors import json_error
from ..extensions import db
from .models import KIND_MAX, Job, JobStatus
from .registry import registered_kinds
from .services import cancel_job, job_dict, job_kinds, list_jobs, retry_job

bp = Blueprint("jobs", __name__)

PAGE_LIMIT = 100
# How often the page asks for fresh rows; read by jobs.js from a data attribute.
POLL_MILLISECONDS = 1500
STATUSES = [status.value for status in JobStatus]
JOB_ID = "<id:job_id>"  # bounded: a larger number is a 404 (web.IdConverter)


def _filters() -> tuple[str | None, str | None]:
    """Status and kind from the query string; unknown values mean "any"."""
    status = request.args.get("status", "")
    kind = request.args.get("kind", "").strip()[:KIND_MAX]
    return (status if status in STATUSES else None), (kind or None)


def _job_or_404(job_id: int) -> Job:
    return db.session.get(Job, job_id) or abort(404)


@bp.get("/admin/jobs")
@admin_required
def jobs_page() -> str:
    status, kind = _filters()
    jobs = [job_dict(job) for job in list_jobs(status=status, kind=kind, limit=PAGE_LIMIT)]
    return render_template(
        "admin/jobs.html",
        jobs=jobs,
        status=status,
        kind=kind,
        statuses=STATUSES,
        kinds=sorted(set(job_kinds()) | set(registered_kinds())),
        poll_url=url_for("jobs.api_list", status=status, kind=kind),
        poll_ms=POLL_MILLISECONDS,
        limit=PAGE_LIMIT,
    )


def _back_to_page() -> Response:
    status = request.form.get("status") or None
    kind = request.form.get("kind") or None
    return redirect(url_for("jobs.jobs_page", status=status, kind=kind))


@bp.post(f"/admin/jobs/{JOB_ID}/retry")
@admin_required
def retry(job_id: int) -> Response:
    _job_or_404(job_id)
    if retry_job(job_id):
        flash(f"Job {job_id} queued again.", "success")
    else:
        flash(f"Job {job_id} cannot be retried: only failed or cancelled jobs can.", "warning")
    return _back_to_page()


@bp.post(f"/admin/jobs/{JOB_ID}/cancel")
@admin_required
def cancel(job_id: int) -> Response:
    _job_or_404(job_id)
    if cancel_job(job_id):
        flash(f"Job {job_id} cancelled.", "success")
    else:
        flash(f"Job {job_id} had already finished.", "warning")
    return _back_to_page()


@bp.get("/api/jobs")
@api_admin_required
def api_list() -> Response:
    status, kind = _filters()
    jobs = list_jobs(status=status, kind=kind, limit=PAGE_LIMIT)
    return jsonify(items=[job_dict(job) for job in jobs])


@bp.get(f"/api/jobs/{JOB_ID}")
@api_admin_required
def api_job(job_id: int) -> Response:
    return jsonify(job_dict(_job_or_404(job_id), payload=True))


@bp.post(f"/api/jobs/{JOB_ID}/retry")
@api_admin_required
def api_retry(job_id: int) -> Response:
    _job_or_404(job_id)
    if not retry_job(job_id):
        return json_error(409, "Conflict", "Only failed or cancelled jobs can be retried.")
    db.session.expire_all()
    return jsonify(job_dict(_job_or_404(job_id)))


@bp.post(f"/api/jobs/{JOB_ID}/cancel")
@api_admin_required
def api_cancel(job_id: int) -> Response:
    _job_or_404(job_id)
    if not cancel_job(job_id):
        return json_error(409, "Conflict", "The job has already finished.")
    db.session.expire_all()
    return jsonify(job_dict(_job_or_404(job_id)))
