"""A `shopai worker` killed with SIGKILL while the model draws: the image job runs
again after its lease and leaves exactly one image (one row, one file, one thumbnail).

The worker is a real subprocess whose image backend is the fake OpenAI-compatible
server running in this test process; it reaches it over a real socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from flask import Flask
from sqlalchemy import select

from shopai.db_types import utcnow
from shopai.extensions import db
from shopai.images.generation import request_images
from shopai.images.models import ProductImage, image_path
from shopai.jobs import Job, JobStatus, cancel_job

from ..conftest import TEST_SECRET_KEY
from ..factories import make_category, make_product
from ..fakes.openai_server import FakeOpenAI
from ..jobs.conftest import fresh, wait_for, wait_for_status
from .conftest import png

SHOPAI = str(Path(sys.executable).with_name("shopai"))
REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = "2"
GENERATIONS = "/images/generations"
# Longer than the test ever lets the first worker wait: the fake server holds the
# answer until the worker's socket closes (the kill), so this only bounds a failure.
HELD_SECONDS = 60.0


class ImageWorkers:
    """`shopai worker` subprocesses drawing with the fake server; none outlives the test."""

    def __init__(self, shop: Flask, fake: FakeOpenAI, instance: Path) -> None:
        self.instance = instance
        self.environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SHOPAI_", "SECRET_KEY", "OPENAI_", "DATABASE_URL", "REDIS_URL"))
        }
        self.environ.update(
            SHOPAI_ENV="testing",
            SECRET_KEY=TEST_SECRET_KEY,
            SHOPAI_INSTANCE_PATH=str(instance),
            DATABASE_URL=shop.config["SQLALCHEMY_DATABASE_URI"],
            SHOPAI_UPLOAD_DIR=shop.config["SHOPAI_UPLOAD_DIR"],
            SHOPAI_JOB_LEASE_SECONDS=LEASE_SECONDS,
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=fake.base_url,
            SHOPAI_IMAGE_BACKEND="api",
            SHOPAI_EMBEDDING_BACKEND="local",
            SHOPAI_ALLOW_PRIVATE_IMAGE_URLS="true",
            SHOPAI_IMAGES_RETRIES="0",  # one HTTP request per attempt, so they can be counted
            SHOPAI_IMAGES_TIMEOUT=str(HELD_SECONDS * 2),
            SHOPAI_SUGGEST_FROM_MODEL="false",
            PYTHONPATH=str(REPO),
        )
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.instance / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [SHOPAI, "worker", "--threads", "1"],
            env=self.environ,
            cwd=self.instance,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, log))
        return process

    def log(self, name: str) -> str:
        return (self.instance / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process, log in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            log.close()


@pytest.fixture
def workers(shop: Flask, fake_ai: FakeOpenAI, tmp_path: Path) -> Iterator[ImageWorkers]:
    started = ImageWorkers(shop, fake_ai, tmp_path)
    yield started
    started.stop_all()


def stored_files(upload_dir: str) -> list[str]:
    """Every file under the upload folder (temporary `.part` files included)."""
    root = Path(upload_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.without_redis("the worker reads the queue file; through Redis: test_multiprocess.py")
def test_a_worker_killed_mid_generation_reruns_the_job_and_one_image_results(
    shop: Flask, fake_ai: FakeOpenAI, workers: ImageWorkers
):
    product = make_product("Kestrel K7", "199.00", make_category("Headphones"))
    for other in list(db.session.scalars(select(Job.id).where(Job.kind != "images.generate"))):
        cancel_job(other)  # the product's search vectors and queries: not this test's concern
    fake_ai.delay_next(HELD_SECONDS, kind="images")  # the first attempt never gets its answer
    fake_ai.reply_image_b64(png((200, 40, 90)))  # what any later attempt gets
    request = request_images(product, n=1)
    request_id, job_id = request.id, request.job_id
    assert job_id is not None

    first = workers.start("worker-1")
    wait_for(lambda: fake_ai.requests_to(GENERATIONS), "the first worker to ask the model")
    assert fresh(job_id).status == JobStatus.RUNNING
    first.send_signal(signal.SIGKILL)  # mid-generation: the model has not answered yet
    assert first.wait(timeout=30) == -signal.SIGKILL

    assert stored_files(shop.config["SHOPAI_UPLOAD_DIR"]) == []
    assert fresh(job_id).status == JobStatus.RUNNING  # nobody knows yet
    wait_for(lambda: (fresh(job_id).lease_until or utcnow()) < utcnow(), "the lease to run out")

    second = workers.start("worker-2")  # its start-up sweep re-queues the job
    done = wait_for_status(job_id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    second.send_signal(signal.SIGTERM)  # graceful stop
    assert second.wait(timeout=30) == 0, workers.log("worker-2")
    assert done.status == JobStatus.SUCCEEDED, (done.last_error, workers.log("worker-2"))
    assert done.attempts == 2
    assert len(fake_ai.requests_to(GENERATIONS)) == 2  # one per attempt
    assert "Worker stopped." in workers.log("worker-2")

    db.session.expire_all()
    images = db.session.scalars(
        select(ProductImage).where(ProductImage.request_id == request_id)
    ).all()
    assert len(images) == 1
    image = images[0]
    assert image.product_id == product.id and image.source == "ai" and image.chosen
    assert stored_files(shop.config["SHOPAI_UPLOAD_DIR"]) == sorted(
        [image_path(image.content_hash), image_path(image.content_hash, thumbnail=True)]
    )
    assert fake_ai.errors == []
