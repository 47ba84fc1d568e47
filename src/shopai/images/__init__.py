"""Stored product images."""

from flask import Blueprint

bp = Blueprint("images", __name__)

from . import views  # noqa: E402, F401
