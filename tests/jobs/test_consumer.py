"""Jobs through a real Huey consumer running in this process, as in the web process."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from shopai import create_app
from shopai.catalog.models import Category
from shopai.extensions import db
from shopai.jobs import JobStatus, enqueue, jobs_runtime

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD
from .conftest import fresh, wait_for, wait_for_status


def test_a_job_goes_queued_running_succeeded(app, consumer, tmp_path: Path):
    job = enqueue("test.gate", {"dir": str(tmp_path), "answer": 7})
    running = wait_for_status(job.id, JobStatus.RUNNING)
    assert running.attempts == 1 and running.lease_until is not None
    wait_for(lambda: fresh(job.id).progress_message == "waiting for release", "progress")

    (tmp_path / "release").touch()
    done = wait_for_status(job.id, JobStatus.SUCCEEDED)
    assert (done.progress_done, done.progress_total, done.progress_message) == (1, 1, "done")
    assert (tmp_path / "result.json").read_text() == '{"answer": 7}'
    assert (tmp_path / "runs.log").read_text().count("attempt=") == 1


def test_a_failing_job_is_retried_by_the_consumer_then_fails(app, consumer):
    consumer.settings = replace(consumer.settings, retry_base_seconds=0.0)
    job = enqueue("test.fail", {"message": "no model today"}, max_attempts=2)
    failed = wait_for_status(job.id, JobStatus.FAILED)
    assert failed.attempts == 2
    assert failed.last_error == "RuntimeError: no model today"


def test_duplicate_messages_run_a_job_once(app, consumer, tmp_path: Path):
    job = enqueue("test.gate", {"dir": str(tmp_path)})
    for _ in range(5):
        consumer.send(job.id)
    wait_for_status(job.id, JobStatus.RUNNING)
    (tmp_path / "release").touch()
    wait_for_status(job.id, JobStatus.SUCCEEDED)
    wait_for(lambda: consumer.huey.pending_count() == 0, "the duplicates to be consumed")
    assert (tmp_path / "runs.log").read_text().count("attempt=") == 1
    assert fresh(job.id).attempts == 1


@pytest.fixture
def web_app(app_config: dict):
    """The app as `make run` has it: an in-process consumer (2 threads) on demand."""
    app = create_app({**app_config, "SHOPAI_WEB_WORKERS": 2})
    with app.app_context():
        yield app
        jobs_runtime(app).close()
        db.session.remove()
        db.engine.dispose()


def test_the_web_consumer_starts_on_the_first_request_only(web_app: Flask):
    runtime = jobs_runtime(web_app)
    assert web_app.test_cli_runner().invoke(args=["jobs", "list"]).exit_code == 0
    assert web_app.test_cli_runner().invoke(args=["seed-demo", "--if-empty"]).exit_code == 0
    assert not runtime._consuming()  # CLI commands never start it

    assert web_app.test_client().get("/").status_code == 200
    assert runtime._consuming()
    assert runtime.start_consumer() is False  # once per process
    job = enqueue("test.noop")
    wait_for_status(job.id, JobStatus.SUCCEEDED)

    runtime.stop_consumer()
    assert not runtime._consuming()


def test_the_consumer_is_off_by_default_in_tests_and_with_redis(
    app: Flask, app_config: dict, caplog: pytest.LogCaptureFixture
):
    app.test_client().get("/")
    assert not jobs_runtime(app)._consuming()

    redis_app = create_app({**app_config, "REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"})
    runtime = jobs_runtime(redis_app)
    assert runtime.settings.web_workers == 0
    assert type(runtime.huey).__name__ == "PriorityRedisHuey"
    assert runtime.describe_queue() == "Redis 127.0.0.1:1"
    with redis_app.app_context():
        redis_app.test_client().get("/")
        assert not runtime._consuming()
        # Nothing listens on port 1: the job is recorded anyway, for the sweep to send.
        job = enqueue("test.noop")
        assert fresh(job.id).status == JobStatus.QUEUED
        assert "message not sent, the sweep will resend it" in caplog.text
        assert "s3cret" not in caplog.text
        db.session.remove()
        db.engine.dispose()


def test_web_writes_and_job_writes_never_lock_each_other(
    app: Flask, consumer, admin, caplog: pytest.LogCaptureFixture, tmp_path: Path
):
    """SQLite allows one writer at a time: requests and handlers both write in short
    transactions and wait (busy_timeout) instead of failing with "database is locked"."""
    caplog.set_level(logging.WARNING)
    stop = tmp_path / "stop"
    jobs = [enqueue("test.db_writes", {"stop": str(stop), "min_steps": 20}) for _ in range(2)]
    for job in jobs:  # both handlers are writing before the first request is made
        wait_for(lambda job=job: fresh(job.id).progress_done > 0, f"job {job.id} to write")
    errors: list[BaseException] = []
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def shopper_admin(worker: int) -> None:
        try:
            client = app.test_client()
            client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            barrier.wait()
            for number in range(15):
                response = client.post(
                    "/admin/categories/new", data={"name": f"Category {worker}-{number}"}
                )
                statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=shopper_admin, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(fresh(job.id).status == JobStatus.RUNNING for job in jobs)  # still writing
    stop.touch()
    for job in jobs:
        done = wait_for_status(job.id, JobStatus.SUCCEEDED, JobStatus.FAILED)
        assert done.status == JobStatus.SUCCEEDED, done.last_error
        assert done.progress_done >= 20

    assert errors == []
    assert statuses == [302] * 60
    assert db.session.scalar(select(func.count()).select_from(Category)) == 60
    assert "locked" not in caplog.text
