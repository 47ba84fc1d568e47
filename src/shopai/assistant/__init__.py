"""The shop assistant: a streaming chat whose products and prices come from the catalog.

The model is given the products a search found for the question and recommends them
by reference; cards, links and prices are the shop's (see `guard`). Without a model
(down, slow, over budget) the assistant still answers, from the search alone."""

from flask import Blueprint

bp = Blueprint("assistant", __name__)

from . import tasks, views  # noqa: E402, F401
