"""Stored product images, and images drawn by a model in background jobs."""

from flask import Blueprint

bp = Blueprint("images", __name__)

from . import generation, views  # noqa: E402, F401
