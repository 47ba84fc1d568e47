"""Job handlers for the tests. Imported by the test process and, through
`shopai worker --import tests.jobs.handlers`, by worker subprocesses.

They write what they did to files named in the payload, so a test can see the
work of another process; results are written the way real handlers must write
them: under a temporary name, then renamed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from shopai.extensions import db
from shopai.jobs import Job, JobContext, PermanentJobError, cancel_job, job_handler

# Safety bound for a handler waiting on its test (a test that died must not leave
# a worker thread behind forever); tests never rely on it.
GATE_LIMIT_SECONDS = 60


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@job_handler("test.gate")
def gate(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Counts its runs, starts writing its result, waits until the test creates the
    `release` file, then finishes the result and renames it into place."""
    folder = Path(payload["dir"])
    _append(folder / "runs.log", f"attempt={ctx.attempt} pid={os.getpid()}")
    temporary = folder / f"result.json.tmp-{os.getpid()}-{ctx.attempt}"
    with temporary.open("w") as partial:
        partial.write('{"answer": ')
        partial.flush()
        ctx.progress(0, 1, "waiting for release")
        deadline = time.monotonic() + GATE_LIMIT_SECONDS
        while not (folder / "release").exists():
            if ctx.cancelled:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released this job")
            time.sleep(0.02)
        partial.write(f"{payload.get('answer', 42)}}}")
        partial.flush()
        os.fsync(partial.fileno())
    os.replace(temporary, folder / "result.json")
    ctx.progress(1, 1, "done")


@job_handler("test.fail")
def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise RuntimeError(payload.get("message", "it broke"))


@job_handler("test.permanent")
def permanent(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise PermanentJobError("product 5 no longer exists")


@job_handler("test.noop")
def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    ctx.progress(1, 1)


@job_handler("test.cancels_itself")
def cancels_itself(ctx: JobContext, payload: dict[str, Any]) -> None:
    cancel_job(ctx.job_id)  # an admin, at just this moment
    ctx.progress(1, 2)  # raises JobCancelled
    raise AssertionError("progress() let a cancelled job go on")


@job_handler("test.db_writes")
def db_writes(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Short write transactions on the app database, one after another, until the
    test says stop (so they overlap whatever the test does meanwhile)."""
    stop = Path(payload["stop"])
    deadline = time.monotonic() + GATE_LIMIT_SECONDS
    step = 0
    while not stop.exists() or step < int(payload.get("min_steps", 1)):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said stop")
        db.session.execute(
            update(Job).where(Job.id == ctx.job_id).values(progress_message=f"step {step}")
        )
        db.session.commit()
        step += 1
        ctx.progress(step, None, f"step {step}")
