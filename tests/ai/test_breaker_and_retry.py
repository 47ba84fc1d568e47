import pytest

from shopai.ai.breaker import CircuitBreaker
from shopai.ai.errors import AIBadResponse, AIRateLimited, AITimeout, AIUnavailable
from shopai.ai.retry import call_with_retries


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_breaker_opens_after_consecutive_failures_and_recovers():
    clock = FakeClock()
    breaker = CircuitBreaker("fake", failure_threshold=2, reset_timeout=10, clock=clock)
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(AIUnavailable, match="circuit open"):
        breaker.before_call()
    clock.now = 10
    assert breaker.state == "half-open"
    breaker.before_call()  # the single trial call
    with pytest.raises(AIUnavailable):
        breaker.before_call()  # a second caller waits for the trial
    breaker.record_success()
    assert breaker.state == "closed"


def test_failed_trial_reopens_the_breaker():
    clock = FakeClock()
    breaker = CircuitBreaker("fake", failure_threshold=3, reset_timeout=5, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now = 5
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"


def run(call, *, timeout=10.0, max_retries=2, breaker=None, clock=None):
    clock = clock or FakeClock()
    breaker = breaker or CircuitBreaker("fake", clock=clock)
    return call_with_retries(
        call,
        timeout=timeout,
        max_retries=max_retries,
        breaker=breaker,
        sleep=clock.sleep,
        clock=clock,
    )


def failing(*errors):
    attempts = []

    def call(remaining):
        attempts.append(remaining)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]
        return "ok"

    return call, attempts


def test_transient_failures_are_retried_within_the_bound():
    call, attempts = failing(AIUnavailable("500"), AITimeout("slow"))
    assert run(call, max_retries=2) == "ok"
    assert len(attempts) == 3


def test_retries_are_bounded():
    call, attempts = failing(*[AIUnavailable("500")] * 5)
    with pytest.raises(AIUnavailable):
        run(call, max_retries=2)
    assert len(attempts) == 3


def test_retry_after_is_honoured():
    clock = FakeClock()
    call, attempts = failing(AIRateLimited("429", retry_after=1.5))
    assert run(call, clock=clock) == "ok"
    assert clock.now == 1.5
    assert attempts[1] == pytest.approx(10 - 1.5)  # the second try gets what is left


def test_retry_after_beyond_the_budget_fails_at_once():
    clock = FakeClock()
    call, attempts = failing(AIRateLimited("429", retry_after=60))
    with pytest.raises(AIRateLimited):
        run(call, timeout=5, clock=clock)
    assert len(attempts) == 1 and clock.now == 0


def test_bad_responses_are_not_retried():
    call, attempts = failing(AIBadResponse("garbage"))
    with pytest.raises(AIBadResponse):
        run(call)
    assert len(attempts) == 1


def test_open_breaker_short_circuits_without_calling():
    clock = FakeClock()
    breaker = CircuitBreaker("fake", failure_threshold=1, reset_timeout=30, clock=clock)
    call, attempts = failing(AIUnavailable("down"))
    with pytest.raises(AIUnavailable):
        run(call, max_retries=0, breaker=breaker, clock=clock)
    with pytest.raises(AIUnavailable, match="circuit open"):
        run(call, max_retries=0, breaker=breaker, clock=clock)
    assert len(attempts) == 1


def test_an_interrupted_trial_does_not_wedge_the_breaker():
    clock = FakeClock()
    breaker = CircuitBreaker("fake", failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.now = 5

    def interrupted(remaining):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(interrupted, breaker=breaker, clock=clock)
    breaker.before_call()  # the next caller may try; it is not refused forever


def test_a_retry_after_that_leaves_no_useful_time_is_not_waited_for():
    clock = FakeClock()
    call, attempts = failing(AIRateLimited("429", retry_after=0.85))
    with pytest.raises(AIRateLimited):
        run(call, timeout=1.0, clock=clock)
    assert len(attempts) == 1 and clock.now == 0


def test_running_out_of_our_own_budget_is_not_an_outage():
    clock = FakeClock()
    breaker = CircuitBreaker("fake", failure_threshold=1, clock=clock)
    with pytest.raises(AITimeout):
        run(lambda remaining: "never", timeout=0, breaker=breaker, clock=clock)
    assert breaker.state == "closed"
