"""Probes for whoever runs the shop: `/healthz` (the process answers) and `/readyz`
(it can serve: database, job queue, and the model backends' state)."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from . import views  # noqa: E402, F401
