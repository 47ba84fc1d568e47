"""`shopai serve`: its checks, the processes it plans, and the supervisor's rules
(with small Python processes standing in for gunicorn and the job workers)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from flask.testing import FlaskCliRunner

from shopai.serve import Child, Supervisor, plan

from ..jobs.conftest import wait_for

PYTHON = sys.executable


def _python(code: str) -> list[str]:
    return [PYTHON, "-c", code]


class _Planned:
    """Stands in for the Supervisor: records the children `serve` would start."""

    children: ClassVar[list[Child]] = []

    def __init__(self, children: list[Child]) -> None:
        _Planned.children = children

    def run(self) -> int:
        return 0


@pytest.mark.without_redis("the default without REDIS_URL")
def test_serve_starts_a_job_worker_on_the_sqlite_queue_by_default(
    runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("shopai.serve.Supervisor", _Planned)
    monkeypatch.setenv("SHOPAI_WEB_WORKERS", "2")
    result = runner.invoke(args=["serve"])
    assert result.exit_code == 0, result.output
    gunicorn, *job_workers = _Planned.children
    assert len(job_workers) == 1 and gunicorn.env == {"SHOPAI_WEB_WORKERS": "0"}
    assert "SHOPAI_WEB_WORKERS is ignored" in result.output


def test_threads_must_leave_room_beside_the_assistant_streams(runner: FlaskCliRunner):
    result = runner.invoke(args=["serve", "--job-workers", "0", "--threads", "8"])
    assert result.exit_code == 2 and "SHOPAI_CHAT_MAX_STREAMS" in result.output


def test_the_plan_is_gthread_gunicorn_and_restartable_job_workers():
    gunicorn, *workers = plan("127.0.0.1:8000", 3, 16, 2, 4)
    assert not gunicorn.restart
    assert gunicorn.argv[1:3] == ["-m", "gunicorn"]
    assert gunicorn.argv[3:5] == ["--worker-class", "gthread"]
    assert gunicorn.argv[-1] == "shopai:create_app()"
    assert [w.restart for w in workers] == [True, True]
    assert workers[0].argv[1:] == ["-m", "shopai", "worker", "--threads", "4"]


def test_with_job_workers_the_web_workers_run_no_jobs():
    """On the SQLite queue too: a job in a web worker's thread slows its requests."""
    gunicorn, _worker = plan("127.0.0.1:8000", 2, 16, 1, 2)
    assert gunicorn.env == {"SHOPAI_WEB_WORKERS": "0"}
    (alone,) = plan("127.0.0.1:8000", 2, 16, 0, 2)
    assert alone.env == {}  # SHOPAI_WEB_WORKERS applies: the web workers run the jobs


def test_a_child_gets_its_own_settings_over_the_supervisors(tmp_path: Path):
    seen = tmp_path / "seen"
    code = f"import os; open({str(seen)!r}, 'w').write(os.environ['SHOPAI_WEB_WORKERS'])"
    child = Child("web", _python(code), restart=False, env={"SHOPAI_WEB_WORKERS": "0"})
    supervisor = Supervisor([child], env={**os.environ, "SHOPAI_WEB_WORKERS": "2"})
    assert supervisor.run() == 1  # the only non-restartable child ended unasked
    assert seen.read_text() == "0"


def _stop_when(supervisor: Supervisor, condition, what: str) -> threading.Thread:
    def watch() -> None:
        try:
            wait_for(condition, what)
        finally:
            supervisor.stop()

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_dying_job_worker_is_restarted_and_a_stop_ends_everything(tmp_path: Path):
    starts = tmp_path / "starts"
    crashing = _python(f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)")
    web = Child("web", _python("import time; time.sleep(600)"), restart=False)
    supervisor = Supervisor([web, Child("job", crashing, restart=True)], max_restart_delay=0.05)
    watcher = _stop_when(
        supervisor,
        lambda: starts.exists() and len(starts.read_text()) >= 3,
        "three starts of the crashing worker",
    )
    assert supervisor.run() == 0
    watcher.join()
    assert all(child.process is None for child in supervisor.children)


def test_when_gunicorn_ends_everything_stops_with_its_code(tmp_path: Path):
    sleeper = Child("job", _python("import time; time.sleep(600)"), restart=True)
    supervisor = Supervisor([Child("web", _python("raise SystemExit(4)"), restart=False), sleeper])
    assert supervisor.run() == 4


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path):
    ready = tmp_path / "ready"
    stubborn = _python(
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(600)"
    )
    supervisor = Supervisor([Child("web", stubborn, restart=False)], stop_seconds=0.5)
    watcher = _stop_when(supervisor, ready.exists, "the stubborn child to start")
    assert supervisor.run() == 1  # one had to be killed
    watcher.join()


def test_sigterm_to_the_supervisor_stops_it_and_its_handler_is_put_back():
    web = Child("web", _python("import time; time.sleep(600)"), restart=False)
    supervisor = Supervisor([web])
    before = signal.getsignal(signal.SIGTERM)

    def terminate() -> None:  # once started: its handler is in place by then
        wait_for(lambda: web.process is not None, "the child to start")
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=terminate)
    thread.start()
    assert supervisor.run() == 0
    thread.join()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("flag", ["--workers", "--threads", "--job-workers"])
def test_counts_are_checked(runner: FlaskCliRunner, flag: str):
    assert runner.invoke(args=["serve", flag, "-1"]).exit_code == 2
