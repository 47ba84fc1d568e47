"""Huey as the transport: the queue, the consumer threads, and when they start.

One `JobRuntime` per app (in `app.extensions`). Its Huey instance is made on first
use and again in a forked child (a SQLite connection or a Redis socket must not be
shared across `fork`). The queue is a SQLite file next to the app's database, or
Redis when `REDIS_URL` is set.

The web process runs a consumer in threads (`SHOPAI_WEB_WORKERS`, default 2 with
SQLite, 0 with Redis; `shopai serve` sets 0 when it starts job workers), started by
the first request it serves: never by CLI commands (`db upgrade`, `seed-demo`), never
at import, never in tests unless a test starts it. `shopai worker` runs one in the
foreground instead.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.api import Huey, TaskWrapper
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import BaseSqlStorage, SqliteStorage

from ..db_types import utcnow

log = logging.getLogger("shopai.jobs")

EXTENSION_KEY = "shopai.jobs"
QUEUE_FILE = "jobs-queue.db"
QUEUE_NAME = "shopai"
# Redis keeps a priority queue as a sorted set: under a key of its own, so a Redis that
# still holds the plain list of an older version is not read as the wrong type.
REDIS_QUEUE_NAME = "shopai-priority"
# An idle SQLite consumer polls the queue file at most this far apart; Redis blocks
# on the list instead, so this only bounds how long a new job waits with SQLite.
MAX_POLL_SECONDS = 2.0
# A stopping consumer lets running handlers finish for this long; after that their
# leases run out and the jobs run again elsewhere.
SHUTDOWN_SECONDS = 10.0

_DATETIME_FIELDS = ("eta", "expires", "expires_resolved")


class JsonMessageSerializer(Serializer):
    """Huey messages as JSON instead of pickle.

    Unpickling runs code, so with pickle anyone who can write to the queue (a shared
    Redis) could run code in every worker. Our messages only carry a job id, so a
    JSON encoding loses nothing; anything else (results, chains) is refused."""

    def _serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message):
            raise TypeError("only task messages go through the job queue")
        if data.on_complete or data.on_error or data.chord_config:
            raise TypeError("job messages carry no callbacks")
        fields = data._asdict()
        for name in _DATETIME_FIELDS:
            if isinstance(fields[name], datetime):
                fields[name] = {"datetime": fields[name].isoformat()}
        return json.dumps(fields).encode()

    def _deserialize(self, data: bytes) -> Message:
        fields = json.loads(data)
        for name in _DATETIME_FIELDS:
            value = fields.get(name)
            if isinstance(value, dict):
                fields[name] = datetime.fromisoformat(value["datetime"])
        fields["args"] = tuple(fields.get("args") or ())
        return Message(**{k: v for k, v in fields.items() if k in Message._fields})


class QueueStorage(SqliteStorage):
    """Huey's SQLite queue, made cheap to write to.

    Huey opens it with `synchronous=FULL`: an fsync per message (milliseconds each,
    paid by the request that sends it, and by every dequeue, under the one lock that
    senders and consumer threads share). A message is only a hint, the `Job` row is
    the truth and the sweep re-sends what a crash lost, so the queue takes WAL's
    `NORMAL`, as the app's database does: never corrupted, only the last messages
    lost on power loss."""

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn

    def enqueue_many(self, items: Sequence[tuple[bytes, int | None]]) -> None:
        """Several messages in one transaction (`enqueue` makes one each)."""
        rows = [(self.name, self.to_blob(data), priority or 0) for data, priority in items]
        with self.db(commit=True) as cursor:
            cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)", rows)


class QueueHuey(SqliteHuey):
    storage_class = QueueStorage


class ThreadedConsumer(Consumer):
    """Huey's consumer, run from a thread of the web process.

    `Consumer.start()` installs signal handlers, which only the main thread may do
    (and which belong to the web server there). Without them the consumer stops
    only through `stop()`, which `JobRuntime.stop_consumer` calls."""

    def _set_signal_handlers(self) -> None:
        pass


@dataclass(frozen=True)
class JobSettings:
    redis_url: str | None
    queue_path: str
    web_workers: int
    lease_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float

    @classmethod
    def from_app(cls, app: Flask) -> JobSettings:
        config = app.config
        return cls(
            redis_url=config.get("REDIS_URL") or None,
            queue_path=str(Path(app.instance_path) / QUEUE_FILE),
            web_workers=int(config.get("SHOPAI_WEB_WORKERS", 0)),
            lease_seconds=float(config.get("SHOPAI_JOB_LEASE_SECONDS", 120.0)),
            retry_base_seconds=float(config.get("SHOPAI_JOB_RETRY_BASE_SECONDS", 10.0)),
            retry_max_seconds=float(config.get("SHOPAI_JOB_RETRY_MAX_SECONDS", 3600.0)),
        )


class JobRuntime:
    """The queue and consumer of one app. `clock` and `random` are attributes so
    tests can replace them (time and jitter without waiting)."""

    def __init__(self, app: Flask, settings: JobSettings) -> None:
        self.app = app
        self.settings = settings
        self.clock: Callable[[], datetime] = utcnow
        self.random: Callable[[], float] = random.random
        self._lock = threading.RLock()
        self._huey: Huey | None = None
        self._run_job: TaskWrapper | None = None
        self._huey_pid = 0
        self._consumer: Consumer | None = None
        self._consumer_thread: threading.Thread | None = None
        self._consumer_pid = 0
        self._exit_hook = False

    # -- the queue -------------------------------------------------------------------

    @property
    def huey(self) -> Huey:
        with self._lock:
            if self._huey is None or self._huey_pid != os.getpid():
                self._huey, self._run_job = self._build_huey()
                self._huey_pid = os.getpid()
            return self._huey

    def _build_huey(self) -> tuple[Huey, TaskWrapper]:
        options: dict[str, Any] = {
            "results": False,  # the job row holds the outcome
            "serializer": JsonMessageSerializer(),
        }
        huey: Huey
        if self.settings.redis_url:
            huey = PriorityRedisHuey(REDIS_QUEUE_NAME, url=self.settings.redis_url, **options)
        else:
            huey = QueueHuey(QUEUE_NAME, filename=self.settings.queue_path, **options)
        app = self.app

        def run_job(job_id: int) -> None:
            from .services import execute_job

            with app.app_context():
                execute_job(int(job_id))

        def sweep_jobs() -> None:
            from .services import schedule_periodic, sweep

            with app.app_context():
                sweep()
                schedule_periodic()

        task = huey.task(name="run_job")(run_job)
        huey.periodic_task(crontab(), name="sweep_jobs")(sweep_jobs)
        return huey, task

    def describe_queue(self) -> str:
        """Where messages go, without any password in the Redis URL."""
        if not self.settings.redis_url:
            return f"SQLite {self.settings.queue_path}"
        parts = urlsplit(self.settings.redis_url)
        where = parts.hostname or parts.path
        return f"Redis {where}" + (f":{parts.port}" if parts.port else "")

    def pending_count(self) -> int:
        """Messages waiting in the queue; raises when the queue cannot be reached
        (readiness checks call it)."""
        with self._lock:
            huey = self.huey
            try:
                return int(huey.pending_count())
            finally:
                if not self._consuming():
                    self._close_storage(huey)

    def send(self, job_id: int, delay: float = 0.0, priority: int = 0) -> None:
        """Send "look at job N" (at `delay` seconds from now; higher `priority` is taken
        first). A failure is logged, not raised: the job row is already committed and
        the sweep re-sends it."""
        self.send_many([(job_id, delay, priority)])

    def send_many(self, messages: Sequence[tuple[int, float, int]]) -> None:
        """`send` for several (job id, delay, priority) at once: the messages of one
        committed unit of work (a saved product's jobs) in one queue transaction."""
        if not messages:
            return
        try:
            with self._lock:
                huey = self.huey
                assert self._run_job is not None
                now = [(job_id, priority) for job_id, delay, priority in messages if delay <= 0]
                if now:
                    self._enqueue_now(huey, self._run_job, now)
                for job_id, delay, priority in messages:
                    if delay > 0:
                        self._run_job.schedule(args=(job_id,), delay=delay, priority=priority)
                if not self._consuming():
                    self._close_storage(huey)
        except Exception:
            ids = ", ".join(str(job_id) for job_id, _, _ in messages)
            log.warning("job %s: message not sent, the sweep will resend it", ids, exc_info=True)

    @staticmethod
    def _enqueue_now(huey: Huey, run_job: TaskWrapper, messages: list[tuple[int, int]]) -> None:
        tasks = [run_job.s(job_id, priority=priority) for job_id, priority in messages]
        if isinstance(huey.storage, QueueStorage):
            huey.storage.enqueue_many(
                [(huey.serialize_task(task), task.priority) for task in tasks]
            )
        else:
            for task in tasks:
                huey.enqueue(task)

    @staticmethod
    def _close_storage(huey: Huey) -> None:
        """A process that only sends keeps no SQLite connection open between sends:
        nothing would ever close it (and an unclosed connection warns on exit)."""
        if isinstance(huey.storage, BaseSqlStorage):
            huey.storage.close()

    # -- consumers -------------------------------------------------------------------

    def _consuming(self) -> bool:
        return self._consumer is not None and self._consumer_pid == os.getpid()

    def _new_consumer(
        self, threads: int, cls: type[Consumer] = Consumer, **options: Any
    ) -> Consumer:
        return cls(
            self.huey,
            workers=threads,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            max_delay=MAX_POLL_SECONDS,
            shutdown_timeout=SHUTDOWN_SECONDS,
            **options,
        )

    def _startup_sweep(self) -> None:
        """Right away, not a minute later: jobs whose worker died while this one was
        down are due now."""
        from .services import sweep

        try:
            with self.app.app_context():
                result = sweep()
            if result.requeued or result.failed or result.resent:
                log.info("startup sweep: %s", result)
        except Exception:
            log.exception("startup sweep failed; the periodic sweep will try again")

    def start_consumer(self, threads: int | None = None) -> bool:
        """Start the in-process consumer once per process (idempotent, thread-safe).
        Returns True when this call started it."""
        threads = self.settings.web_workers if threads is None else threads
        if threads <= 0:
            return False
        with self._lock:
            if self._consuming():
                return False
            consumer = self._new_consumer(threads, ThreadedConsumer)
            self._consumer, self._consumer_pid = consumer, os.getpid()

            def supervise() -> None:
                self._startup_sweep()
                try:
                    consumer.run()  # workers, scheduler, health checks; until stop()
                except Exception:
                    log.exception("job consumer stopped unexpectedly")

            thread = threading.Thread(target=supervise, name="shopai-jobs", daemon=True)
            self._consumer_thread = thread
            thread.start()
            if not self._exit_hook:
                atexit.register(self.stop_consumer)
                self._exit_hook = True
        log.info(
            "job consumer started in-process: %s thread(s), %s", threads, self.describe_queue()
        )
        return True

    def stop_consumer(self, timeout: float = SHUTDOWN_SECONDS + 5) -> None:
        """Stop the in-process consumer, letting running handlers finish for up to
        SHUTDOWN_SECONDS; a handler still running after that is re-run after its lease."""
        with self._lock:
            consumer, thread = self._consumer, self._consumer_thread
            if consumer is None or self._consumer_pid != os.getpid():
                return
            self._consumer = self._consumer_thread = None
            self._consumer_pid = 0
        consumer.stop(graceful=True)
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            if self._huey is not None and not self._consuming():
                self._close_storage(self._huey)

    def close(self) -> None:
        """Stop the consumer (if this process runs one) and close the queue's
        connection; the runtime reconnects if used again."""
        self.stop_consumer()
        with self._lock:
            if self._huey is not None and self._huey_pid == os.getpid():
                self._close_storage(self._huey)

    def run_worker(self, threads: int) -> None:
        """`shopai worker`: a consumer in the foreground (main thread, so Huey's own
        signal handling: SIGTERM stops gracefully, SIGINT at once, SIGHUP restarts)."""
        consumer = self._new_consumer(threads, graceful_signal="TERM")
        self._startup_sweep()
        with self._lock:
            self._consumer, self._consumer_pid = consumer, os.getpid()
        try:
            consumer.run()
        finally:
            with self._lock:
                self._consumer = None
                self._consumer_pid = 0
                self._close_storage(self.huey)


def current_runtime() -> JobRuntime:
    return jobs_runtime(current_app)


def jobs_runtime(app: Flask) -> JobRuntime:
    return app.extensions[EXTENSION_KEY]


def _start_web_consumer() -> None:
    """before_request: the first request a web process serves starts its consumer.
    After that this is one attribute check per request."""
    runtime = current_runtime()
    if not runtime._consuming():
        runtime.start_consumer()


def init_jobs(app: Flask) -> None:
    settings = JobSettings.from_app(app)
    app.extensions[EXTENSION_KEY] = JobRuntime(app, settings)
    if settings.web_workers > 0:
        app.before_request(_start_web_consumer)
