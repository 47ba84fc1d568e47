"""Which function runs which kind of job.

Handlers register at import time with `@job_handler("kind")`, so every process that
imports the feature's module (the web app through `create_app`, a worker, a worker
started with `--import`) knows the same kinds. The registry is per process, not per
app: a handler is code, and code is the same for every app in a process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .models import KIND_MAX

if TYPE_CHECKING:
    from .context import JobContext

Handler = Callable[["JobContext", dict[str, Any]], None]
H = TypeVar("H", bound=Handler)

_handlers: dict[str, Handler] = {}
_periodic: dict[str, timedelta] = {}
_priorities: dict[str, int] = {}


def _identity(function: Handler) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def job_handler(
    kind: str, *, every: timedelta | None = None, priority: int = 0
) -> Callable[[H], H]:
    """Register the decorated function as the handler of `kind`.

    The function receives a `JobContext` and the job's payload (a dict decoded
    from JSON). It must be idempotent: a job runs at least once, and after a
    crash or an expired lease it runs again from the start. Write files under a
    temporary name and rename them, upsert rows, and never hold a database
    transaction open while waiting on a model.

    With `every`, the kind is also periodic housekeeping: the sweep enqueues it once
    per period (keyed by the period, so of several processes sweeping, one job runs),
    with an empty payload, and it shows on the jobs page like any other job.

    Workers take higher `priority` first: a kind whose jobs are slow and plentiful
    (images) goes below 0, so quick work queued after it (search vectors) is not
    stuck behind hundreds of them.

    Two different functions for one kind is a programming error; re-importing
    the same module (a reload) replaces the handler with its new version.
    """
    if not kind or len(kind) > KIND_MAX or not kind.isascii() or not kind.isprintable():
        raise ValueError(f"job kind must be 1-{KIND_MAX} printable ASCII characters: {kind!r}")

    def register(function: H) -> H:
        existing = _handlers.get(kind)
        if existing is not None and _identity(existing) != _identity(function):
            raise ValueError(f"job kind {kind!r} already has a handler: {_identity(existing)}")
        _handlers[kind] = function
        if every is not None:
            _periodic[kind] = every
        _priorities[kind] = priority
        return function

    return register


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def periodic_kinds() -> dict[str, timedelta]:
    """Each periodic kind and its period."""
    return dict(_periodic)


def priority_for(kind: str) -> int:
    return _priorities.get(kind, 0)
