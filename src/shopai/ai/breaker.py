"""A circuit breaker per backend and feature, so an outage costs one timeout rather than one
per request, and one feature's slow calls never shut out another feature with a longer budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from .errors import AIUnavailable

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Closed: calls pass. After `failure_threshold` consecutive failures it opens and
    refuses calls at once; after `reset_timeout` seconds it lets one trial call through
    (half-open). A success closes it again, a failure re-opens it."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 3,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        """Raise `AIUnavailable` without calling the backend while the circuit is open."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_running:
                self._trial_running = True
                return
            wait = max(0.0, self.reset_timeout - (self._clock() - (self._opened_at or 0.0)))
        raise AIUnavailable(f"{self.name} is unavailable (circuit open; next try in {wait:.0f} s)")

    def abandon_trial(self) -> None:
        """The call was interrupted without telling us anything about the backend
        (KeyboardInterrupt, a worker shutting down): let the next caller try instead."""
        with self._lock:
            self._trial_running = False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False
