"""/healthz and /readyz: what a load balancer and an orchestrator ask."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.exc import OperationalError

from shopai.ai.errors import AIUnavailable
from shopai.ai_service import ai_client
from shopai.health import checks


def test_healthz_answers_cheaply_without_a_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_healthz_is_json_for_a_browser_too(client):
    response = client.get("/healthz", headers={"Accept": "text/html"})
    assert response.is_json


@pytest.mark.without_redis("checks the queue file's answer")
def test_readyz_lists_every_check_with_timing(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "queue", "models"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["duration_ms"] >= 0
    assert body["checks"]["database"]["required"] is True
    assert body["checks"]["queue"] == {**body["checks"]["queue"], "backend": "sqlite", "pending": 0}
    models = body["checks"]["models"]
    assert models["required"] is False
    assert models["features"]["chat"] == {
        "backend": "local",
        "model": "SmolLM2-135M-Instruct",
        "configured": True,
        "circuit": "idle",
    }
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_starts_no_model_server_and_spends_nothing(app, client):
    client.get("/readyz")
    assert ai_client()._backends == {}


def test_a_failing_database_makes_readyz_503(client, monkeypatch):
    def broken() -> dict:
        raise OperationalError("SELECT 1", {}, Exception("connection refused password=hunter2"))

    monkeypatch.setattr(checks, "_database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["error"]
    assert "hunter2" not in response.get_data(as_text=True)


@pytest.mark.without_redis("breaks the queue file")
def test_an_unreachable_queue_makes_readyz_503(app, client, monkeypatch):
    from shopai.jobs.runtime import jobs_runtime

    def unreachable() -> int:
        raise OSError("no such file")

    monkeypatch.setattr(jobs_runtime(app), "pending_count", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["queue"]["error"] == "OSError: no such file"


def test_an_unreachable_redis_is_reported_within_its_timeout(app, client, monkeypatch):
    from shopai.jobs.runtime import jobs_runtime

    runtime = jobs_runtime(app)
    settings = runtime.settings.__class__(
        **{**vars(runtime.settings), "redis_url": "redis://127.0.0.1:1/0"}
    )
    monkeypatch.setattr(runtime, "settings", settings)
    response = client.get("/readyz")
    assert response.status_code == 503
    queue = response.get_json()["checks"]["queue"]
    assert queue["ok"] is False and "ConnectionError" in queue["error"]


def test_an_open_circuit_degrades_but_keeps_the_shop_ready(app, client):
    breaker = _open_chat_breaker(app)
    assert breaker.state == "open"
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    models = body["checks"]["models"]
    assert models["ok"] is False
    assert models["error"] == "circuit open for chat"
    assert models["features"]["chat"]["circuit"] == "open"
    assert models["features"]["suggest"]["circuit"] == "idle"


def _open_chat_breaker(app):
    """The chat feature's breaker, opened as repeated failures would, without starting
    the embedded model server (the breaker is made as `AIClient.backend` makes it)."""
    from shopai.ai.breaker import CircuitBreaker

    client = ai_client()
    breaker = CircuitBreaker("test", failure_threshold=1, reset_timeout=600)
    client._breakers[client._backend_key("chat"), "chat"] = breaker
    breaker.record_failure()
    with pytest.raises(AIUnavailable):
        breaker.before_call()
    return breaker


def test_probes_are_not_rate_limited(app_config):
    from shopai import create_app

    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "2 per minute"})
    client = app.test_client()
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))
    assert all(client.get("/readyz").status_code == 200 for _ in range(5))


def test_probe_access_lines_are_debug_only(client, caplog):
    with caplog.at_level(logging.INFO, logger="shopai.access"):
        client.get("/healthz")
        client.get("/categories")
    paths = [getattr(r, "path", None) for r in caplog.records if r.name == "shopai.access"]
    assert paths == ["/categories"]


def test_readyz_body_is_plain_json(client):
    body = json.loads(client.get("/readyz").get_data(as_text=True))
    assert isinstance(body["checks"]["database"]["dialect"], str)


def test_a_missing_embedded_model_file_degrades(app_config, tmp_path):
    from shopai import create_app
    from shopai.ai.settings import AISettings

    settings = AISettings.from_env({"SHOPAI_LOCAL_MODEL_PATH": str(tmp_path / "gone.gguf")})
    app = create_app({**app_config, "SHOPAI_AI": settings})
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["models"]["features"]["suggest"]["configured"] is False
    assert "no model file for suggest" in body["checks"]["models"]["error"]
