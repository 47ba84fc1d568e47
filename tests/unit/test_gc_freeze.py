"""A served process freezes its start-up objects once, on its first request; tests don't.

Bare Flask apps: a shop app that is not in testing mode would also start loading the
embedded model on its first request."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from flask import Flask

from shopai import create_app
from shopai.gc_freeze import FROZEN_KEY, _freeze_once, init_gc_freeze


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the test process's objects back to the collector


def _app(testing: bool) -> Flask:
    app = Flask(__name__)
    app.testing = testing
    app.add_url_rule("/", "index", lambda: "ok")
    init_gc_freeze(app)
    return app


def test_the_first_request_of_a_served_app_freezes_once(unfrozen):
    client = _app(testing=False).test_client()
    client.get("/")
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    client.get("/")
    assert gc.get_freeze_count() == 0  # once per app, not per request


def test_a_testing_app_freezes_nothing(unfrozen):
    app = _app(testing=True)
    app.test_client().get("/")
    assert gc.get_freeze_count() == 0 and FROZEN_KEY not in app.extensions


def test_the_shop_registers_it_when_served(app_config: dict):
    served = create_app({**app_config, "TESTING": False})  # no request: nothing loads
    assert _freeze_once in served.before_request_funcs[None]
    assert _freeze_once not in create_app(app_config).before_request_funcs[None]
