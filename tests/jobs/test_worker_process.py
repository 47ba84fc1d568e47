"""`shopai worker` processes against the run's app database (SQLite, or PostgreSQL) and a
SQLite queue: one is
killed with SIGKILL mid-job, and another finishes the job after the lease runs out,
leaving exactly one result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from shopai.db_types import utcnow
from shopai.jobs import JobStatus, enqueue

from ..conftest import TEST_SECRET_KEY
from .conftest import fresh, wait_for, wait_for_status

SHOPAI = str(Path(sys.executable).with_name("shopai"))
REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = "2"


class Workers:
    """Starts `shopai worker` subprocesses for one test and never leaves one behind."""

    def __init__(self, instance: Path, database_uri: str) -> None:
        self.instance = instance
        self.database_uri = database_uri
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SHOPAI_", "SECRET_KEY", "OPENAI_", "DATABASE_URL", "REDIS_URL"))
        }
        environ.update(
            SHOPAI_ENV="testing",
            SECRET_KEY=TEST_SECRET_KEY,
            SHOPAI_INSTANCE_PATH=str(self.instance),
            DATABASE_URL=self.database_uri,
            SHOPAI_JOB_LEASE_SECONDS=LEASE_SECONDS,
            PYTHONPATH=str(REPO),
        )
        log = (self.instance / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [SHOPAI, "worker", "--threads", "1", "--import", "tests.jobs.handlers"],
            env=environ,
            cwd=self.instance,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, log))
        return process

    def stop_all(self) -> None:
        for process, log in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            log.close()


@pytest.fixture
def workers(app, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path, app.config["SQLALCHEMY_DATABASE_URI"])
    yield started
    started.stop_all()


@pytest.mark.without_redis("the worker reads the queue file; through Redis: test_multiprocess.py")
def test_a_killed_worker_loses_no_job_and_the_rerun_leaves_one_result(
    app, workers: Workers, tmp_path: Path
):
    out = tmp_path / "out"
    out.mkdir()
    job = enqueue("test.gate", {"dir": str(out), "answer": 42}, max_attempts=3)

    first = workers.start("worker-1")
    wait_for_status(job.id, JobStatus.RUNNING)
    wait_for(lambda: list(out.glob("result.json.tmp-*")), "the first run to start writing")
    first.send_signal(signal.SIGKILL)  # no cleanup, no goodbye: the machine died
    assert first.wait(timeout=30) == -signal.SIGKILL

    (out / "release").touch()  # any further run may finish
    assert fresh(job.id).status == JobStatus.RUNNING  # nobody knows yet
    wait_for(lambda: (fresh(job.id).lease_until or utcnow()) < utcnow(), "the lease to run out")

    second = workers.start("worker-2")  # its start-up sweep re-queues the job
    done = wait_for_status(job.id, JobStatus.SUCCEEDED)
    second.send_signal(signal.SIGTERM)  # graceful stop
    assert second.wait(timeout=30) == 0, (tmp_path / "worker-2.log").read_text()

    assert done.attempts == 2
    runs = (out / "runs.log").read_text().splitlines()
    assert [line.split()[0] for line in runs] == ["attempt=1", "attempt=2"]
    assert runs[0].split()[1] != runs[1].split()[1]  # two different processes
    assert (out / "result.json").read_text() == '{"answer": 42}'
    assert sorted(p.name for p in out.glob("result*") if ".tmp-" not in p.name) == ["result.json"]
    assert "Worker stopped." in (tmp_path / "worker-2.log").read_text()
