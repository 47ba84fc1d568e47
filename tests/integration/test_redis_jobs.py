"""Background jobs through the real Redis: messages go to Redis, the job row decides."""

from __future__ import annotations

from flask import Flask

from shopai.jobs import JobStatus, enqueue, jobs_runtime

from ..jobs import handlers  # noqa: F401 - registers the test.* job kinds
from ..jobs.conftest import wait_for_status
from .redis_server import RedisServer


def test_jobs_queue_in_redis_and_run_once(redis_app: Flask, redis_server: RedisServer):
    runtime = jobs_runtime(redis_app)
    assert runtime.describe_queue() == f"Redis 127.0.0.1:{redis_server.port}"
    jobs = [enqueue("test.noop", {"n": n}, key=f"noop:{n}") for n in range(20)]
    assert enqueue("test.noop", {"n": 0}, key="noop:0").id == jobs[0].id  # one per key
    with redis_server.client() as client:
        assert client.zcard(runtime.huey.storage.queue_key) == 20  # waiting in Redis

    assert runtime.start_consumer(threads=2)
    try:
        done = [wait_for_status(job.id, JobStatus.SUCCEEDED) for job in jobs]
    finally:
        runtime.stop_consumer()
    assert [job.attempts for job in done] == [1] * 20
