"""`/healthz` and `/readyz`. Neither touches the session (no cookie is set), neither is
rate limited, and neither may be cached anywhere: a probe must see the process as it
is now. Both answer JSON whatever the Accept header says."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from ..extensions import limiter
from . import bp
from .checks import run_checks

NO_STORE = "no-store"


@bp.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """Liveness: the process serves requests. Checks nothing else on purpose: a
    database outage must not make an orchestrator restart every web process."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = NO_STORE
    return response


@bp.get("/readyz")
@limiter.exempt
def readyz() -> Response:
    """Readiness: 200 while every required check passes ("ok", or "degraded" when only
    the model backends are failing: AI features degrade, the shop still works), 503
    ("unavailable") when the database or the job queue fails."""
    results = run_checks()
    required_ok = all(r.ok for r in results if r.required)
    if not required_ok:
        status = "unavailable"
    elif all(r.ok for r in results):
        status = "ok"
    else:
        status = "degraded"
    response = jsonify(status=status, checks={r.name: r.as_dict() for r in results})
    response.status_code = 200 if required_ok else 503
    response.headers["Cache-Control"] = NO_STORE
    return response
