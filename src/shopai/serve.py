"""`shopai serve`: the production start, gunicorn web workers plus `shopai worker`s.

One command starts every process a machine runs and stops them together:

- gunicorn with N web workers (`--workers`), each with T threads (`--threads`,
  gthread): an assistant answer streams over SSE and holds its thread while the
  model writes, so threads, not processes, bound how many shoppers are served at
  once (keep SHOPAI_CHAT_MAX_STREAMS below T);
- M `shopai worker` processes (`--job-workers`, default 1) running background jobs,
  from the Redis queue (`REDIS_URL`) or the SQLite queue file beside the database.
  Web workers then run no jobs: a job's CPU work (search vectors, image decoding)
  in a thread of a web process would hold its interpreter lock while a request
  waits, which is what made a product create's p99 twice its median. With
  `--job-workers 0` the web workers run jobs in threads (`SHOPAI_WEB_WORKERS`).

The supervisor restarts a job worker that dies (with a growing delay if it keeps
dying: a bad setting should not spin), and stops everything when gunicorn ends
(gunicorn restarts its own workers). SIGTERM stops all of them gracefully:
gunicorn finishes its requests, workers finish their jobs (an unfinished job runs
again after its lease), and whatever is still running after `STOP_SECONDS` is
killed. (Ctrl-C in a terminal reaches every process of the group at once, and
gunicorn and Huey take SIGINT as "stop now".) Children also get SIGTERM if the
supervisor itself dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess  # nosec B404
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import click
from flask import current_app
from flask.cli import with_appcontext

from .env import EnvReader

log = logging.getLogger("shopai.serve")

# gunicorn's own graceful timeout; the supervisor waits a little longer before killing.
GRACEFUL_SECONDS = 20
STOP_SECONDS = GRACEFUL_SECONDS + 10
# A job worker that ran at least this long before dying is restarted at once.
HEALTHY_SECONDS = 60.0
MAX_RESTART_DELAY = 30.0
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    """libc for prctl, found once: `find_library` runs `ldconfig -p`, which has no place
    between fork and exec."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    return ctypes.CDLL(name, use_errno=True) if name else None


_LIBC = _load_libc()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """For the child, before exec: get SIGTERM when the supervisor (`parent`) dies
    (Linux), so a killed supervisor leaves no web or job process behind. A supervisor
    that died before prctl took effect is seen by the changed parent id."""

    def in_child() -> None:
        if _LIBC is None:
            return
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return in_child


@dataclass
class Child:
    """One process the supervisor runs: `restart` ones come back when they die; any
    other ending stops the whole group."""

    name: str
    argv: list[str]
    restart: bool
    env: dict[str, str] = field(default_factory=dict)  # over the supervisor's environment
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    due_at: float = 0.0  # when a dead restartable child is started again


@dataclass
class Supervisor:
    children: list[Child]
    stop_seconds: float = STOP_SECONDS
    max_restart_delay: float = MAX_RESTART_DELAY
    clock: Callable[[], float] = time.monotonic
    env: dict[str, str] | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        """Run until a signal or the end of a non-restartable child; the exit code is
        that child's (0 after a signal, when everything stopped in time)."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        code = 0
        try:
            for child in self.children:
                self._start(child)
            code = self._watch()
        finally:
            code = self._stop_all() or code
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def stop(self) -> None:
        self._stopping.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping every process", signal.Signals(signum).name)
        self._stopping.set()

    def _start(self, child: Child) -> None:
        """Our own interpreter running gunicorn or `shopai worker` with our argv: no
        untrusted input reaches the command line (hence nosec B404, B603)."""
        env = {**(os.environ if self.env is None else self.env), **child.env}
        child.process = subprocess.Popen(  # noqa: S603  # nosec B603
            child.argv, env=env, preexec_fn=_die_with_parent(os.getpid())
        )
        child.started_at = self.clock()
        log.info("started %s (pid %s)", child.name, child.process.pid)

    def _watch(self) -> int:
        while not self._stopping.wait(POLL_SECONDS):
            now = self.clock()
            for child in self.children:
                if child.process is None:
                    if now >= child.due_at:
                        self._start(child)
                    continue
                code = child.process.poll()
                if code is None:
                    continue
                if not child.restart:
                    log.error("%s exited with %s: stopping every process", child.name, code)
                    return code if code > 0 else 1  # killed by a signal, or 0 unasked
                ran = now - child.started_at
                child.failures = 0 if ran >= HEALTHY_SECONDS else child.failures + 1
                delay = 2.0 ** (child.failures - 1) if child.failures else 0.0
                delay = min(self.max_restart_delay, delay)
                log.warning("%s exited with %s; restarting in %.0f s", child.name, code, delay)
                child.process, child.due_at = None, now + delay
        return 0

    def _stop_all(self) -> int:
        """SIGTERM to all, SIGKILL to whatever is left after `stop_seconds`; 1 if any
        had to be killed."""
        running = [c.process for c in self.children if c.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.stop_seconds
        code = 0
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("pid %s did not stop in time: killed", process.pid)
                process.kill()
                process.wait()
                code = 1
        for child in self.children:
            child.process = None
        return code


def gunicorn_argv(bind: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        bind,
        "--graceful-timeout",
        str(GRACEFUL_SECONDS),
        "--no-control-socket",  # its default path is shared by every gunicorn of the user
        "shopai:create_app()",
    ]


def worker_argv(threads: int) -> list[str]:
    return [sys.executable, "-m", "shopai", "worker", "--threads", str(threads)]


def plan(bind: str, workers: int, threads: int, job_workers: int, job_threads: int) -> list[Child]:
    """gunicorn and the job workers; with job workers, web workers run no jobs."""
    web_env = {"SHOPAI_WEB_WORKERS": "0"} if job_workers else {}
    children = [
        Child("gunicorn", gunicorn_argv(bind, workers, threads), restart=False, env=web_env)
    ]
    children += [
        Child(f"job worker {n}", worker_argv(job_threads), restart=True)
        for n in range(1, job_workers + 1)
    ]
    return children


def _check(config: dict, threads: int) -> None:
    streams = config["SHOPAI_CHAT_MAX_STREAMS"]
    if threads <= streams:
        raise click.UsageError(
            f"--threads must be above SHOPAI_CHAT_MAX_STREAMS ({streams}): each assistant "
            "answer holds a thread while it streams, and shoppers browsing need threads too"
        )


@click.command("serve")
@click.option("--bind", help="host:port or unix:PATH [SHOPAI_SERVE_BIND, 127.0.0.1:8000].")
@click.option(
    "--workers", type=click.IntRange(min=1), help="gunicorn web workers [SHOPAI_SERVE_WORKERS]."
)
@click.option(
    "--threads",
    type=click.IntRange(min=2),
    help="Threads per web worker [SHOPAI_SERVE_THREADS, 16].",
)
@click.option(
    "--job-workers",
    type=click.IntRange(min=0),
    help="`shopai worker` processes; 0: web workers run jobs [SHOPAI_SERVE_JOB_WORKERS, 1].",
)
@click.option(
    "--job-threads",
    type=click.IntRange(min=1, max=64),
    help="Jobs run at once by each job worker [SHOPAI_SERVE_JOB_THREADS, 2].",
)
@with_appcontext
def serve_command(
    bind: str | None,
    workers: int | None,
    threads: int | None,
    job_workers: int | None,
    job_threads: int | None,
) -> None:
    """Serve the shop in production: gunicorn web workers and job worker processes,
    stopped together by SIGTERM (run `shopai db upgrade` first)."""
    config = current_app.config
    bind = bind or config["SHOPAI_SERVE_BIND"]
    workers = workers or config["SHOPAI_SERVE_WORKERS"]
    threads = threads or config["SHOPAI_SERVE_THREADS"]
    job_workers = config["SHOPAI_SERVE_JOB_WORKERS"] if job_workers is None else job_workers
    job_threads = job_threads or config["SHOPAI_SERVE_JOB_THREADS"]
    _check(config, threads)
    if config.get("REDIS_URL") and not job_workers:
        click.echo("No job workers here: run `shopai worker` on another machine.", err=True)
    if job_workers and os.environ.get("SHOPAI_WEB_WORKERS", "0").strip() not in ("", "0"):
        click.echo(
            "The web workers run no jobs beside job workers (SHOPAI_WEB_WORKERS is ignored; "
            "use --job-workers 0 for jobs in web threads).",
            err=True,
        )
    click.echo(
        f"ShopAI on {bind}: {workers} web worker(s) x {threads} threads, "
        f"{job_workers} job worker(s) x {job_threads} threads"
    )
    supervisor = Supervisor(plan(bind, workers, threads, job_workers, job_threads))
    sys.exit(supervisor.run())


def serve_settings(env: EnvReader) -> dict[str, object]:
    """The defaults of `shopai serve`, from the environment (see `.env.example`)."""
    return {
        "SHOPAI_SERVE_BIND": env.text("SHOPAI_SERVE_BIND", "127.0.0.1:8000"),
        "SHOPAI_SERVE_WORKERS": env.integer("SHOPAI_SERVE_WORKERS", 2, minimum=1),
        "SHOPAI_SERVE_THREADS": env.integer("SHOPAI_SERVE_THREADS", 16, minimum=2),
        "SHOPAI_SERVE_JOB_WORKERS": env.integer("SHOPAI_SERVE_JOB_WORKERS", 1, minimum=0),
        "SHOPAI_SERVE_JOB_THREADS": env.integer("SHOPAI_SERVE_JOB_THREADS", 2, minimum=1),
    }
