"""Search-query suggestions while the shopper types: instant, from the catalog, never
a search that finds nothing; made smarter by a model off the keystroke path
(`tasks`, when present, queues the model jobs)."""

import importlib
from importlib.util import find_spec

from flask import Blueprint

bp = Blueprint("suggest", __name__)

from . import views  # noqa: E402, F401

if find_spec(f"{__name__}.tasks") is not None:  # job handlers, written beside the engine
    importlib.import_module(f"{__name__}.tasks")
