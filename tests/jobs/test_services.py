"""The job state machine, driven directly (no consumer) with a controlled clock."""

from __future__ import annotations

import pickle
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shopai.catalog.models import Category
from shopai.extensions import db
from shopai.jobs import (
    Job,
    JobStatus,
    add_job,
    cancel_job,
    enqueue,
    execute_job,
    job_dict,
    retry_job,
    services,
    sweep,
)
from shopai.jobs.context import JobCancelled, JobContext
from shopai.jobs.models import ERROR_MAX
from shopai.jobs.runtime import JsonMessageSerializer
from shopai.jobs.services import claim, describe_error, retry_delay

from ..factories import make_category
from .conftest import fresh


def fresh_category(category_id: int) -> Category:
    db.session.rollback()
    category = db.session.get(Category, category_id)
    assert category is not None
    return category


def messages(runtime) -> list:
    """Messages waiting in the queue (a delayed one waits there with its eta until a
    consumer moves it to the schedule)."""
    serializer = JsonMessageSerializer()
    return [serializer.deserialize(bytes(raw)) for raw in runtime.huey.storage.enqueued_items()]


def job_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Job)) or 0


def test_enqueue_records_the_job_then_sends_its_message(app, runtime, clock):
    job = enqueue("test.noop", {"product_id": 7, "ids": (1, 2)})
    assert job.status == JobStatus.QUEUED
    assert job.payload == {"product_id": 7, "ids": [1, 2]}  # what the handler will see
    assert job.attempts == 0 and job.max_attempts == 5
    assert job.run_after == job.created_at == clock.now
    assert runtime.huey.pending_count() == 1


def test_enqueue_with_a_delay_schedules_the_message(app, runtime, clock):
    job = enqueue("test.noop", delay=30)
    assert job.run_after == clock.now + timedelta(seconds=30)
    [message] = messages(runtime)
    assert message.args == (job.id,) and message.eta is not None


@pytest.mark.parametrize(
    ("kind", "payload", "options", "error"),
    [
        ("nobody.handles.this", {}, {}, LookupError),
        ("test.noop", {"when": object()}, {}, TypeError),
        ("test.noop", {"x": float("nan")}, {}, ValueError),
        ("test.noop", {"blob": "x" * 20_000}, {}, ValueError),
        ("test.noop", {}, {"key": "k" * 201}, ValueError),
        ("test.noop", {}, {"max_attempts": 0}, ValueError),
        ("test.noop", {}, {"delay": -1}, ValueError),
    ],
)
def test_enqueue_refuses_what_no_worker_could_run(app, kind, payload, options, error):
    with pytest.raises(error):
        enqueue(kind, payload, **options)
    assert job_count() == 0


def test_the_same_key_returns_the_same_job(app, runtime):
    first = enqueue("test.noop", {"a": 1}, key="embed:7:abc")
    second = enqueue("test.noop", {"a": 2}, key="embed:7:abc")
    assert second.id == first.id and second.payload == {"a": 1}
    assert job_count() == 1
    assert runtime.huey.pending_count() == 1  # no second message either


def fail_or_cancel(job_id: int, how: str) -> None:
    if how == "failed":
        assert execute_job(job_id) == "failed"
    else:
        assert cancel_job(job_id)


@pytest.mark.parametrize("how", ["failed", "cancelled"])
def test_the_key_of_a_failed_or_cancelled_job_queues_it_again(app, runtime, clock, how):
    """A backend was down, the job failed (or an admin cancelled it): enqueueing the
    same work later must run it again, not hand back the dead job for good."""
    job = enqueue("test.permanent", {"a": 1}, key="embed:7:abc", max_attempts=2)
    fail_or_cancel(job.id, how)
    runtime.huey.flush()
    clock.advance(600)

    again = enqueue("test.permanent", {"a": 2}, key="embed:7:abc", max_attempts=2)
    assert again.id == job.id and again.payload == {"a": 1}  # the key names the work
    assert again.status == JobStatus.QUEUED and again.attempts == 0
    assert again.run_after == again.updated_at == clock.now
    assert again.finished_at is None and again.lease_owner is None
    assert job_count() == 1
    assert [message.args for message in messages(runtime)] == [(job.id,)]
    if how == "failed":  # the reason of the last run stays readable until the next one
        assert again.last_error == "PermanentJobError: product 5 no longer exists"
    assert execute_job(job.id) == "failed" and fresh(job.id).attempts == 1


def test_queueing_a_failed_key_again_honours_the_delay(app, runtime, clock):
    job = enqueue("test.permanent", key="later")
    execute_job(job.id)
    runtime.huey.flush()
    again = enqueue("test.permanent", key="later", delay=30)
    assert again.status == JobStatus.QUEUED
    assert again.run_after == clock.now + timedelta(seconds=30)
    [message] = messages(runtime)
    assert message.args == (job.id,) and message.eta is not None


def test_the_key_of_a_live_or_succeeded_job_returns_it_unchanged(app, runtime, clock):
    queued = enqueue("test.noop", key="queued")
    running = enqueue("test.noop", key="running")
    assert claim(running.id, runtime)
    succeeded = enqueue("test.noop", key="succeeded")
    assert execute_job(succeeded.id) == "succeeded"
    runtime.huey.flush()
    clock.advance(600)
    before = {job.id: job_dict(fresh(job.id)) for job in (queued, running, succeeded)}
    for key in ("queued", "running", "succeeded"):
        job = enqueue("test.noop", key=key)
        assert job_dict(fresh(job.id)) == before[job.id]
    assert runtime.huey.pending_count() == 0


def test_a_failed_key_revived_meanwhile_is_not_reset_again(app, runtime, clock, monkeypatch):
    """Between our look-up (the job was failed) and our re-queue, another process
    re-queued it and a worker claimed it: that run is left alone."""
    job = enqueue("test.permanent", key="busy")
    execute_job(job.id)
    runtime.huey.flush()
    real = services._by_key
    taken = []

    def revived_elsewhere_after_the_look_up(key: str) -> Job | None:
        found = real(key)
        assert found is not None and found.status == JobStatus.FAILED

        def other_process() -> None:
            with app.app_context():
                assert retry_job(job.id)
                taken.append(claim(job.id, runtime))

        thread = threading.Thread(target=other_process)
        thread.start()
        thread.join()
        return found  # still says "failed" in this session

    monkeypatch.setattr(services, "_by_key", revived_elsewhere_after_the_look_up)
    runtime.huey.flush()
    returned = enqueue("test.permanent", key="busy")
    [claimed] = taken
    assert claimed is not None
    assert returned.id == job.id and returned.status == JobStatus.RUNNING
    now = fresh(job.id)
    assert now.status == JobStatus.RUNNING and now.lease_owner == claimed.owner
    assert now.attempts == 1
    assert runtime.huey.pending_count() == 1  # only the other process's message


def test_concurrent_enqueues_of_a_failed_key_queue_it_once(app, runtime):
    job = enqueue("test.permanent", key="again")
    execute_job(job.id)
    runtime.huey.flush()
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def enqueue_in_thread() -> None:
        try:
            with app.app_context():
                barrier.wait()
                ids.append(enqueue("test.permanent", key="again").id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enqueue_in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ids == [job.id] * 4
    assert fresh(job.id).status == JobStatus.QUEUED
    assert runtime.huey.pending_count() == 1  # one re-queue won, one message


def test_a_lost_race_on_the_key_returns_the_winner(app, monkeypatch):
    """Another process inserted the key between our look-up and our insert: the
    unique index refuses our row and we return theirs."""
    winner = enqueue("test.noop", key="race")
    real = services._by_key
    calls = iter([None])
    monkeypatch.setattr(services, "_by_key", lambda key: next(calls, None) or real(key))
    assert enqueue("test.noop", key="race").id == winner.id
    assert job_count() == 1


def test_a_lost_race_keeps_the_callers_work(app, runtime, monkeypatch):
    """The unique index refuses our row (another process recorded the key after our
    look-up) without rolling back the rest of the caller's transaction."""
    winner = enqueue("test.noop", key="race")
    runtime.huey.flush()
    category = make_category("Kept")
    category.description = "changed in the same transaction"
    real = services._by_key
    calls = iter([None])
    monkeypatch.setattr(services, "_by_key", lambda key: next(calls, None) or real(key))
    assert add_job("test.noop", key="race").id == winner.id
    db.session.commit()
    assert job_count() == 1
    assert fresh_category(category.id).description == "changed in the same transaction"
    assert runtime.huey.pending_count() == 0  # the job was queued already: no message


def test_added_jobs_commit_with_the_callers_work_and_are_sent_after(app, runtime):
    job = add_job("test.noop", {"a": 1})
    other = add_job("test.noop", key="with-key")
    assert runtime.huey.pending_count() == 0  # no worker may look before the commit
    db.session.commit()
    assert sorted(message.args for message in messages(runtime)) == [(job.id,), (other.id,)]
    runtime.huey.flush()

    add_job("test.noop", {"a": 2})
    db.session.rollback()  # the row is gone: so is its message
    db.session.commit()
    assert job_count() == 2
    assert runtime.huey.pending_count() == 0


def test_concurrent_enqueues_of_one_key_make_one_job(app):
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def enqueue_in_thread() -> None:
        try:
            with app.app_context():
                barrier.wait()
                ids.append(enqueue("test.noop", key="together").id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enqueue_in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids) == 4 and len(set(ids)) == 1
    assert job_count() == 1


def test_claiming_is_exclusive_until_the_lease_expires(app, runtime, clock):
    job = enqueue("test.noop", max_attempts=2)
    first = claim(job.id, runtime)
    assert first is not None and first.attempt == 1
    assert claim(job.id, runtime) is None  # a duplicate message, another worker
    running = fresh(job.id)
    assert running.status == JobStatus.RUNNING
    assert running.lease_until == clock.now + timedelta(seconds=runtime.settings.lease_seconds)

    clock.advance(runtime.settings.lease_seconds + 1)  # the first worker died
    second = claim(job.id, runtime)
    assert second is not None and second.attempt == 2
    clock.advance(runtime.settings.lease_seconds + 1)
    assert claim(job.id, runtime) is None  # out of attempts: the sweep fails it


def test_a_job_that_is_not_due_is_not_claimed(app, runtime, clock):
    job = enqueue("test.noop", delay=60)
    assert execute_job(job.id) == "skipped"
    assert fresh(job.id).attempts == 0
    clock.advance(60)
    assert execute_job(job.id) == "succeeded"


def test_success_records_progress_and_times(app, runtime, clock):
    job = enqueue("test.noop")
    clock.advance(5)
    assert execute_job(job.id) == "succeeded"
    done = fresh(job.id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert (done.progress_done, done.progress_total) == (1, 1)
    assert done.started_at == done.finished_at == clock.now
    assert done.lease_until is None and done.last_error is None


def test_failures_back_off_exponentially_then_fail_with_the_reason(app, runtime, clock):
    job = enqueue(
        "test.fail",
        {"message": "model server said no: api_key=abc123def\n  at line 2"},
        max_attempts=3,
    )
    runtime.huey.flush()

    assert execute_job(job.id) == "retrying"
    after_one = fresh(job.id)
    assert after_one.status == JobStatus.QUEUED and after_one.attempts == 1
    # base 10 s, equal jitter with random() = 0.5: 5 + 5 * 0.5
    assert after_one.run_after == clock.now + timedelta(seconds=7.5)
    assert after_one.last_error == "RuntimeError: model server said no: api_key=*** at line 2"
    [delayed] = messages(runtime)
    assert delayed.args == (job.id,) and delayed.eta is not None

    assert execute_job(job.id) == "skipped"  # a message that came early changes nothing
    assert fresh(job.id).attempts == 1

    clock.advance(7.5)
    assert execute_job(job.id) == "retrying"
    assert fresh(job.id).run_after == clock.now + timedelta(seconds=15)  # 20 / 2 + 20 / 2 * 0.5

    clock.advance(15)
    assert execute_job(job.id) == "failed"
    failed = fresh(job.id)
    assert failed.status == JobStatus.FAILED and failed.attempts == 3
    assert failed.finished_at == clock.now
    assert "model server said no" in (failed.last_error or "")
    assert "abc123def" not in (failed.last_error or "")


def test_backoff_is_capped_and_jittered():
    assert retry_delay(1, 10, 3600, 0.0) == 5
    assert retry_delay(1, 10, 3600, 0.999) < 10
    assert retry_delay(3, 10, 3600, 1.0) == 40
    assert retry_delay(30, 10, 3600, 1.0) == 3600
    assert retry_delay(30, 10, 3600, 0.0) == 1800


def test_a_permanent_error_fails_at_once(app, clock):
    job = enqueue("test.permanent")
    assert execute_job(job.id) == "failed"
    failed = fresh(job.id)
    assert failed.attempts == 1 and failed.max_attempts == 5
    assert failed.last_error == "PermanentJobError: product 5 no longer exists"


def test_errors_are_one_bounded_line():
    text = describe_error(ValueError("x" * 5000))
    assert len(text) == ERROR_MAX and text.endswith("…")
    assert describe_error(KeyError()) == "KeyError"
    assert "hunter2" not in describe_error(OSError("postgresql://shop:hunter2@db/shop"))


def test_a_job_cancelled_while_running_writes_no_result(app, clock):
    job = enqueue("test.cancels_itself")
    assert execute_job(job.id) == "lost"
    cancelled = fresh(job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.finished_at == clock.now and cancelled.lease_until is None


def stale_context(runtime, clock, job_id: int, owner: str) -> JobContext:
    return JobContext(
        job_id=job_id,
        kind="test.noop",
        attempt=1,
        max_attempts=5,
        owner=owner,
        engine=db.engine,
        lease_seconds=runtime.settings.lease_seconds,
        clock=clock,
    )


def test_a_worker_whose_job_was_taken_over_cannot_write(app, runtime, clock):
    job = enqueue("test.noop")
    first = claim(job.id, runtime)
    assert first is not None
    clock.advance(runtime.settings.lease_seconds + 1)
    second = claim(job.id, runtime)  # a second worker took over
    assert second is not None and second.owner != first.owner
    stale = stale_context(runtime, clock, job.id, first.owner)
    assert stale.heartbeat() is False
    assert stale.cancelled
    assert services._finish(job.id, first.owner, status=JobStatus.SUCCEEDED.value) is False
    assert fresh(job.id).status == JobStatus.RUNNING
    assert services._finish(job.id, second.owner, status=JobStatus.SUCCEEDED.value) is True


def test_a_cancelled_then_retried_job_fences_off_its_old_run(app, runtime, clock):
    """Retry starts the attempt count again, so the count cannot be the fence: the
    handler still finishing the cancelled run must not write over the new run."""
    job = enqueue("test.noop")
    old = claim(job.id, runtime)
    assert old is not None and old.attempt == 1
    assert cancel_job(job.id) and retry_job(job.id)
    new = claim(job.id, runtime)
    assert new is not None and new.attempt == 1  # the same attempt number again
    old_context = stale_context(runtime, clock, job.id, old.owner)
    with pytest.raises(JobCancelled):
        old_context.progress(1, 1)
    assert services._finish(job.id, old.owner, status=JobStatus.SUCCEEDED.value) is False
    assert fresh(job.id).progress_done == 0


def test_retry_and_cancel_only_from_the_right_states(app, runtime, clock):
    job = enqueue("test.permanent")
    assert retry_job(job.id) is False  # queued already
    execute_job(job.id)
    assert cancel_job(job.id) is False  # failed: finished
    messages = runtime.huey.pending_count()
    assert retry_job(job.id) is True
    again = fresh(job.id)
    assert again.status == JobStatus.QUEUED and again.attempts == 0
    assert again.finished_at is None and again.progress_done == 0
    assert runtime.huey.pending_count() == messages + 1
    assert cancel_job(job.id) is True
    assert fresh(job.id).status == JobStatus.CANCELLED
    assert retry_job(job.id) is True


def test_sweep_requeues_expired_leases_and_fails_last_attempts(app, runtime, clock):
    requeue = enqueue("test.noop", max_attempts=2)
    last = enqueue("test.noop", max_attempts=1)
    healthy = enqueue("test.noop")
    assert claim(requeue.id, runtime) and claim(last.id, runtime)
    clock.advance(runtime.settings.lease_seconds + 1)
    assert claim(healthy.id, runtime)  # leased just now
    runtime.huey.flush()

    result = sweep()
    assert (result.requeued, result.failed) == (1, 1)
    requeued = fresh(requeue.id)
    assert requeued.status == JobStatus.QUEUED and requeued.run_after == clock.now
    assert "lease expired" in (requeued.last_error or "")
    assert fresh(last.id).status == JobStatus.FAILED
    assert fresh(healthy.id).status == JobStatus.RUNNING
    assert runtime.huey.pending_count() == 1  # a message for the re-queued job
    assert execute_job(requeue.id) == "succeeded"
    assert fresh(requeue.id).attempts == 2


def test_sweep_resends_messages_that_were_lost(app, runtime, clock):
    jobs = [enqueue("test.noop") for _ in range(3)]
    runtime.huey.flush()  # the queue lost them (a Redis restart without persistence)
    assert sweep().resent == 0  # not overdue yet: a worker may just be slow
    clock.advance(runtime.settings.lease_seconds + 1)
    assert sweep().resent == 3
    assert runtime.huey.pending_count() == 3
    assert sweep().resent == 0  # touched: not again before another lease has passed
    clock.advance(runtime.settings.lease_seconds + 1)
    assert sweep().resent == 3  # still overdue: at most one more message per lease
    for job in jobs:
        assert execute_job(job.id) == "succeeded"
    assert [execute_job(job.id) for job in jobs] == ["skipped"] * 3  # duplicates: no-ops
    assert sweep().resent == 0


def test_waiting_retry_messages_do_not_hide_lost_ones(app, runtime, clock):
    """After an outage the queue holds many future retry messages; they belong to
    jobs that are not due, and must not be counted against the lost messages of
    jobs that are overdue."""
    lost = [enqueue("test.noop") for _ in range(3)]
    runtime.huey.flush()  # their messages are gone
    clock.advance(runtime.settings.lease_seconds + 1)
    retrying = [enqueue("test.noop", delay=3600) for _ in range(5)]
    assert runtime.huey.pending_count() == 5  # the retries' messages wait with an eta

    assert sweep().resent == 3
    sent = [message.args for message in messages(runtime)]
    assert sorted(sent[5:]) == [(job.id,) for job in lost]
    for job in lost:
        assert execute_job(job.id) == "succeeded"
    assert {fresh(job.id).status for job in retrying} == {JobStatus.QUEUED}


def test_sweep_resends_at_most_a_batch_oldest_first(app, runtime, clock, monkeypatch):
    monkeypatch.setattr(services, "SWEEP_BATCH", 2)
    jobs = []
    for _ in range(3):
        jobs.append(enqueue("test.noop"))
        clock.advance(1)
    runtime.huey.flush()
    clock.advance(runtime.settings.lease_seconds + 1)
    assert sweep().resent == 2
    assert [message.args for message in messages(runtime)] == [(jobs[0].id,), (jobs[1].id,)]
    assert sweep().resent == 1  # the next pass takes the rest
    assert messages(runtime)[-1].args == (jobs[2].id,)


def test_queue_messages_are_json_not_pickle(app, runtime):
    enqueue("test.noop")
    raw = runtime.huey.storage.enqueued_items()[0]
    serializer = JsonMessageSerializer()
    message = serializer.deserialize(bytes(raw))
    assert message.name.endswith("run_job") and message.args == (1,)
    assert serializer.deserialize(serializer.serialize(message)) == message
    with pytest.raises(ValueError):
        serializer.deserialize(pickle.dumps({"a": 1}))
    with pytest.raises(TypeError):
        serializer.serialize({"not": "a message"})


def test_workers_take_higher_priority_kinds_first(app, runtime):
    from shopai.jobs.registry import job_handler

    job_handler("test.low", priority=-10)(lambda ctx, payload: None)
    low = [enqueue("test.low") for _ in range(3)]
    normal = enqueue("test.noop")
    # Huey's queue hands out messages by priority, then in order: the later, normal one first.
    message = runtime.huey.dequeue()
    assert message is not None and message.args == (normal.id,)
    assert [runtime.huey.dequeue().args for _ in low] == [(job.id,) for job in low]
