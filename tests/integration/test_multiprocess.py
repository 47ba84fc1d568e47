"""The shop as production runs it: `shopai serve` with 2 gunicorn web workers and 2
`shopai worker` processes, on one database file (SQLite, WAL) and the real Redis.

- 200 image jobs, queued by `shopai images generate --missing --no-wait`, drawn by
  the fake OpenAI-compatible server of this test process over real sockets: each runs
  exactly once, except those a SIGKILLed worker was running, which run once more;
  every product ends with exactly one image, chosen;
- a job worker is killed with SIGKILL mid-run, while the model is drawing for it
  (the fake holds that one answer until the worker's socket closes): the supervisor
  starts another, the sweep re-queues the expired lease, nothing is lost;
- a rate limit counts across the two gunicorn workers (one is stopped with SIGSTOP
  while the other answers, so each provably serves some of the requests);
- SIGTERM stops every process gracefully.

And on the SQLite queue file (no Redis): the job worker runs the jobs, the web worker none.

Nothing here depends on how fast it goes: every wait is a bounded poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from flask import Flask
from sqlalchemy import func, select

from shopai.catalog.models import Product
from shopai.db_types import utcnow
from shopai.extensions import db
from shopai.images.models import ImageRequest, ProductImage
from shopai.jobs import Job, JobStatus, cancel_job, sweep

from ..conftest import TEST_SECRET_KEY
from ..factories import make_category, make_product
from ..fakes.openai_server import FakeOpenAI
from ..images.conftest import image_settings
from ..jobs.conftest import fresh, wait_for
from .conftest import close_app
from .ports import free_port
from .redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]
SHOPAI = str(Path(sys.executable).with_name("shopai"))
PRODUCTS = 200
WEB_WORKERS = 2
JOB_WORKERS = 2
# Long enough that a live worker's heartbeat (every third of it) never misses it on a
# busy machine; the test waits this long once, after the kill.
LEASE_SECONDS = 12
GENERATIONS = "/images/generations"
HELD_SECONDS = 120.0  # only bounds a failure: the held answer ends with the kill
LIMIT = 5  # suggestion requests per client per day, for the rate-limit check
PATIENCE = 300.0  # upper bound of any one wait below; reaching it is a failure


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Deployment:
    """`shopai serve` and the CLI, as subprocesses with production-like settings."""

    def __init__(self, shop: Flask, fake: FakeOpenAI, redis_url: str | None, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(
                ("SHOPAI_", "SECRET_KEY", "OPENAI_", "DATABASE_URL", "REDIS_URL", "RATELIMIT_")
            )
        }
        self.environ.update(
            SHOPAI_ENV="testing",
            SECRET_KEY=TEST_SECRET_KEY,
            SHOPAI_INSTANCE_PATH=str(folder),
            DATABASE_URL=shop.config["SQLALCHEMY_DATABASE_URI"],
            SHOPAI_UPLOAD_DIR=shop.config["SHOPAI_UPLOAD_DIR"],
            SHOPAI_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            SHOPAI_SUGGEST_RATE_LIMIT=f"{LIMIT} per day",
            SHOPAI_CHAT_MAX_STREAMS="2",
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=fake.base_url,
            SHOPAI_IMAGE_BACKEND="api",
            SHOPAI_EMBEDDING_BACKEND="local",
            SHOPAI_ALLOW_PRIVATE_IMAGE_URLS="true",
            SHOPAI_IMAGES_RETRIES="0",  # one request per attempt, so they can be counted
            SHOPAI_IMAGES_TIMEOUT=str(HELD_SECONDS * 2),
            SHOPAI_IMAGES_DAILY_LIMIT=str(PRODUCTS * 10),
            SHOPAI_AI_BREAKER_FAILURES="1000",
            SHOPAI_SUGGEST_FROM_MODEL="false",
            PYTHONPATH=str(REPO),
        )
        if redis_url is not None:
            self.environ["REDIS_URL"] = redis_url
        self.serve: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "serve.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, web_workers: int = WEB_WORKERS, job_workers: int = JOB_WORKERS) -> None:
        self._log = self.log_path.open("wb")
        self.serve = subprocess.Popen(  # noqa: S603 - our own console script
            [
                SHOPAI, "serve",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(web_workers),
                "--threads", "4",
                "--job-workers", str(job_workers),
                "--job-threads", "2",
            ],
            env=self.environ,
            cwd=self.folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._answering, "the web workers to answer", PATIENCE)

    def _answering(self) -> bool:
        assert self.serve is not None
        if self.serve.poll() is not None:
            pytest.fail(f"shopai serve exited with {self.serve.returncode}:\n{self.log()}")
        return self.get("/")[0] == 200

    def cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own console script
            [SHOPAI, *args],
            env=self.environ,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=PATIENCE
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()
        except OSError:
            return 0, b""

    def processes(self) -> tuple[int, list[int], list[int]]:
        """The gunicorn master, its web workers, and the job workers."""
        assert self.serve is not None
        children = _children(self.serve.pid)
        masters = [pid for pid in children if "gunicorn" in _cmdline(pid)]
        jobs = [pid for pid in children if " worker " in _cmdline(pid) and _alive(pid)]
        assert len(masters) == 1, [_cmdline(pid) for pid in children]
        web = [pid for pid in _children(masters[0]) if _alive(pid)]
        return masters[0], web, jobs

    def stop(self) -> int | None:
        process, self.serve = self.serve, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def shop(app_config: dict, redis_url: str, fake_ai: FakeOpenAI) -> Iterator[Flask]:
    """This test's own view of the shop: same database, same Redis."""
    from shopai import create_app

    config = {
        **app_config,
        "SHOPAI_AI": image_settings(fake_ai),
        "SHOPAI_SUGGEST_FROM_MODEL": False,
        "SHOPAI_IMAGES_DAILY_LIMIT": PRODUCTS * 10,
    }
    app = create_app(config)
    with app.app_context():
        yield app
    close_app(app)


@pytest.fixture
def deployment(
    shop: Flask, fake_ai: FakeOpenAI, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Deployment]:
    started = Deployment(shop, fake_ai, redis_server.url, tmp_path / "deployment")
    started.folder.mkdir()
    yield started
    started.stop()


def _image_jobs() -> list[Job]:
    db.session.rollback()  # see the other processes' commits
    return list(db.session.scalars(select(Job).where(Job.kind == "images.generate")))


def _held_job(fake: FakeOpenAI) -> Job:
    """The job whose model request the fake is holding: the first one it received."""
    prompt = fake.requests_to(GENERATIONS)[0].body["prompt"]
    for product in db.session.scalars(select(Product)):
        if product.name in prompt:
            request = db.session.scalar(
                select(ImageRequest).where(ImageRequest.product_id == product.id)
            )
            assert request is not None and request.job_id is not None
            return fresh(request.job_id)
    raise AssertionError(f"no product named in {prompt!r}")


def test_two_web_and_two_job_workers_run_200_image_jobs_once_and_survive_a_kill(
    shop: Flask, fake_ai: FakeOpenAI, deployment: Deployment
):
    category = make_category("Gadgets")
    for n in range(1, PRODUCTS + 1):
        make_product(f"Gadget {n:03d}", "19.00", category, description="A gadget.")
    for other in list(db.session.scalars(select(Job.id).where(Job.kind != "images.generate"))):
        cancel_job(other)  # search vectors of the new products: not this test's concern
    fake_ai.delay_next(HELD_SECONDS, kind="images")  # the first drawing is never answered

    deployment.start()
    master, web, job_workers = deployment.processes()
    assert len(web) == WEB_WORKERS and len(job_workers) == JOB_WORKERS
    queued = deployment.cli("images", "generate", "--missing", "--no-wait")
    assert f"{PRODUCTS} image request(s) queued" in queued

    # Mid-run: a quarter of the drawings asked for, the first one still held.
    wait_for(
        lambda: len(fake_ai.requests_to(GENERATIONS)) >= PRODUCTS // 4,
        "the workers to be a quarter through",
        PATIENCE,
    )
    held = _held_job(fake_ai)
    assert held.status == JobStatus.RUNNING and held.lease_owner
    victim = int(held.lease_owner.split(":")[1])
    assert victim in job_workers
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not _alive(victim), "the killed worker to be gone", PATIENCE)
    in_flight = {
        job.id
        for job in _image_jobs()
        if job.status == JobStatus.RUNNING and job.lease_owner.split(":")[1] == str(victim)
    }
    assert held.id in in_flight

    # The supervisor starts another worker; the sweep (each worker's, every minute, or
    # this one) re-queues what the dead one held once its lease has run out.
    wait_for(
        lambda: deployment.log().count("ShopAI worker:") == JOB_WORKERS + 1,
        "the supervisor to replace the worker (and the new one to be up)",
        PATIENCE,
    )
    assert len(deployment.processes()[2]) == JOB_WORKERS
    wait_for(lambda: (fresh(held.id).lease_until or utcnow()) < utcnow(), "the lease to run out")
    sweep()
    wait_for(
        lambda: all(job.status == JobStatus.SUCCEEDED for job in _image_jobs()),
        "every image job to succeed",
        PATIENCE,
    )

    jobs = _image_jobs()
    assert len(jobs) == PRODUCTS
    attempts = {job.id: job.attempts for job in jobs}
    assert {job_id: attempts[job_id] for job_id in in_flight} == dict.fromkeys(in_flight, 2)
    assert {a for job_id, a in attempts.items() if job_id not in in_flight} == {1}
    # At most one model request per attempt: no job ran twice unseen. The held job asks
    # again; another job the killed worker held asks again only if it died before its
    # image was stored (a re-run finds the stored image and asks nothing).
    requests = len(fake_ai.requests_to(GENERATIONS))
    assert PRODUCTS + 1 <= requests <= PRODUCTS + len(in_flight)
    images_per_product = db.session.execute(
        select(
            ProductImage.product_id, func.count(), func.count().filter(ProductImage.chosen)
        ).group_by(ProductImage.product_id)
    ).all()
    assert len(images_per_product) == PRODUCTS
    assert {(count, chosen) for _pid, count, chosen in images_per_product} == {(1, 1)}
    assert fake_ai.errors == []

    # A rate limit counts across the two web workers.
    first, second = web
    responses = []
    for stopped in (second, first):
        os.kill(stopped, signal.SIGSTOP)  # so the other one answers everything meanwhile
        try:
            responses += [deployment.get("/api/suggest?q=gad")[0] for _ in range(LIMIT - 2)]
        finally:
            os.kill(stopped, signal.SIGCONT)
    assert responses == [200] * LIMIT + [429]

    assert deployment.stop() == 0, deployment.log()
    log = deployment.log()
    assert log.count("Worker stopped.") == JOB_WORKERS  # graceful, not killed
    assert "queue: Redis 127.0.0.1:" in log  # the workers took their jobs from Redis
    assert not _alive(master) and not any(_alive(pid) for pid in web)
    summary = {"jobs": len(jobs), "reruns": len(in_flight), "kills": 1}
    print(json.dumps(summary))  # shown with -s, for the record


@pytest.fixture
def sqlite_queue_deployment(
    app_config: dict, fake_ai: FakeOpenAI, tmp_path: Path
) -> Iterator[tuple[Flask, Deployment]]:
    """The shop without Redis: its jobs go through the SQLite queue file."""
    from shopai import create_app

    app = create_app({**app_config, "SHOPAI_AI": image_settings(fake_ai)})
    with app.app_context():
        deployment = Deployment(app, fake_ai, None, tmp_path / "deployment")
        deployment.folder.mkdir()
        yield app, deployment
        deployment.stop()
    close_app(app)


@pytest.mark.without_redis("the SQLite queue file is the point")
def test_on_the_sqlite_queue_the_job_worker_runs_the_jobs_and_the_web_worker_none(
    sqlite_queue_deployment: tuple[Flask, Deployment], fake_ai: FakeOpenAI
):
    """`shopai serve` starts a job worker without Redis too, and tells its web workers
    to run no jobs (a job's CPU work there would hold up requests), whatever
    SHOPAI_WEB_WORKERS says."""
    _shop, deployment = sqlite_queue_deployment
    category = make_category("Gadgets")
    for n in range(1, 7):
        make_product(f"Gadget {n}", "19.00", category, description="A gadget.")
    for other in list(db.session.scalars(select(Job.id))):
        cancel_job(other)  # search vectors of the new products: not this test's concern
    fake_ai.delay_next(HELD_SECONDS, kind="images")  # held until we have seen who asked
    deployment.environ.update(SHOPAI_WEB_WORKERS="2", SHOPAI_LOG_LEVEL="INFO")
    deployment.start(web_workers=1, job_workers=1)
    _master, web, job_workers = deployment.processes()
    assert len(web) == 1 and len(job_workers) == 1
    assert deployment.get("/search?q=gadget")[0] == 200  # it would start a web consumer
    assert "6 image request(s) queued" in deployment.cli(
        "images", "generate", "--missing", "--no-wait"
    )

    wait_for(lambda: fake_ai.requests_to(GENERATIONS), "the first drawing to be asked for")
    held = _held_job(fake_ai)
    assert held.status == JobStatus.RUNNING and held.lease_owner
    assert int(held.lease_owner.split(":")[1]) in job_workers
    fake_ai.release_delays()
    wait_for(
        lambda: (jobs := _image_jobs()) and all(job.status == JobStatus.SUCCEEDED for job in jobs),
        "every image job to succeed",
        PATIENCE,
    )
    assert len(_image_jobs()) == 6

    log = deployment.log()
    assert "GET /search 200" in log  # the web worker's INFO lines do reach this log
    assert "job consumer started in-process" not in log
    assert "queue: SQLite" in log  # the job worker's banner
    assert deployment.stop() == 0
