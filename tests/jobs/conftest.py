"""Fixtures for the job system: a controllable clock, a real in-process consumer,
and waiting on the database with a bounded loop (never asserting a duration)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from flask import Flask

from shopai.db_types import utcnow
from shopai.extensions import db
from shopai.jobs import Job, JobRuntime, jobs_runtime

from . import handlers  # noqa: F401 - registers the test.* job kinds

T = TypeVar("T")

# Upper bound for anything a test waits for; reaching it is a failure, and no test
# depends on how fast things happen below it.
WAIT_LIMIT_SECONDS = 30.0


def wait_for(condition: Callable[[], T], what: str, limit: float = WAIT_LIMIT_SECONDS) -> T:
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def fresh(job_id: int) -> Job:
    """The job as the database has it now (not as this session last saw it)."""
    db.session.rollback()
    job = db.session.get(Job, job_id)
    assert job is not None
    return job


def wait_for_status(job_id: int, *statuses: str) -> Job:
    return wait_for(
        lambda: (job := fresh(job_id)).status in statuses and job,
        f"job {job_id} to be {' or '.join(statuses)}",
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def runtime(app: Flask) -> Iterator[JobRuntime]:
    runtime = jobs_runtime(app)
    yield runtime
    runtime.close()


@pytest.fixture
def clock(runtime: JobRuntime) -> FakeClock:
    fake = FakeClock()
    runtime.clock = fake
    runtime.random = lambda: 0.5
    return fake


@pytest.fixture
def consumer(runtime: JobRuntime) -> Iterator[JobRuntime]:
    """A real Huey consumer in this process (two threads), stopped after the test."""
    assert runtime.start_consumer(threads=2)
    yield runtime
    runtime.stop_consumer()
