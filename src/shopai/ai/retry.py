"""Bounded retries inside one time budget, honouring Retry-After.

The openai SDK's own retries are switched off (max_retries=0) so there is exactly
one retry loop: this one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .breaker import CircuitBreaker
from .errors import AIRateLimited, AITimeout, AIUnavailable

T = TypeVar("T")
MAX_BACKOFF = 8.0
MIN_ATTEMPT_SECONDS = 0.5
MIN_ATTEMPT_SHARE = 0.2


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: ~0.25 s, 0.5 s, 1 s, ... capped. (Jitter needs
    no secret randomness: hence noqa S311 and nosec B311.)"""
    return min(MAX_BACKOFF, 0.25 * 2**attempt) * random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311


def call_with_retries(
    call: Callable[[float], T],
    *,
    timeout: float,
    max_retries: int,
    breaker: CircuitBreaker,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `call(remaining_seconds)` until it succeeds, the retries run out, or the budget does.

    Timeouts, connection failures and 5xx count against the breaker and are retried;
    429 is retried after Retry-After (when that fits the budget) without counting as an
    outage; every other error (bad request, malformed reply) is raised at once.
    """
    deadline = clock() + timeout
    attempt = 0
    while True:
        remaining = deadline - clock()
        if remaining <= 0:  # our budget ran out, which says nothing about the backend
            raise AITimeout(f"no answer within {timeout:g} s")
        breaker.before_call()
        try:
            result = call(remaining)
        except (AITimeout, AIUnavailable) as exc:
            breaker.record_failure()
            error: Exception = exc
            wait = backoff(attempt)
        except AIRateLimited as exc:
            breaker.record_success()  # the backend is up, just busy
            error = exc
            wait = exc.retry_after if exc.retry_after is not None else backoff(attempt)
        except Exception:
            breaker.record_success()
            raise
        except BaseException:
            breaker.abandon_trial()
            raise
        else:
            breaker.record_success()
            return result
        # Retry only if, after waiting, a useful share of the budget is left for the try.
        useful = max(MIN_ATTEMPT_SECONDS, MIN_ATTEMPT_SHARE * timeout)
        if attempt >= max_retries or clock() + wait + useful > deadline:
            raise error
        sleep(wait)
        attempt += 1
