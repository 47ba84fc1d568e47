"""Product search: full-text and by meaning, the results page, and the vectors' upkeep."""

from flask import Blueprint

bp = Blueprint("search", __name__)

from . import tasks, views  # noqa: E402, F401  (tasks: job handlers and signal receivers)
