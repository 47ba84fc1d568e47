"""Search-query suggestions while the shopper types: instant, from the catalog, never
a search that finds nothing; made smarter by a model off the keystroke path (`tasks`:
the model jobs and their handlers)."""

from flask import Blueprint

bp = Blueprint("suggest", __name__)

from . import tasks, views  # noqa: E402, F401
