"""The usage ledger hands events to its own writer thread and never touches the database
on the caller's thread, which may be a request, a worker, or a garbage-collection finalizer."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shopai.ai.client import AIClient
from shopai.ai.settings import AISettings
from shopai.ai.types import UsageEvent
from shopai.usage.models import UsageRecord
from shopai.usage.services import UsageLedger

MESSAGES = [{"role": "user", "content": "Hello"}]


def usage_event(feature: str = "chat", who: str | None = "user:1") -> UsageEvent:
    return UsageEvent(feature, "openai", "gpt-5.4-mini", 10, 5, 0, 12.5, 0.00002, who, True)


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    UsageRecord.__table__.create(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(engine: Engine) -> Iterator[UsageLedger]:
    ledger = UsageLedger(engine)
    yield ledger
    ledger.flush()


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[threading.Thread, str]]]:
    """Every SQL statement run on the engine, with the thread that ran it."""
    seen: list[tuple[threading.Thread, str]] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        seen.append((threading.current_thread(), statement))

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", before_cursor_execute)


def inserting_threads(statements: list[tuple[threading.Thread, str]]) -> list[threading.Thread]:
    return [thread for thread, sql in statements if sql.startswith("INSERT INTO usage_record")]


def rows(engine: Engine) -> list[UsageRecord]:
    with Session(engine) as session:
        return list(session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


def test_recording_returns_without_touching_the_database_on_the_calling_thread(
    engine, ledger, statements
):
    ledger(usage_event())
    caller = threading.current_thread()
    assert [sql for thread, sql in statements if thread is caller] == []
    assert ledger.flush()
    (writer,) = inserting_threads(statements)
    assert writer is not caller
    (row,) = rows(engine)
    assert (row.feature, row.who, row.prompt_tokens, row.cost_micro_usd) == (
        "chat",
        "user:1",
        10,
        20,
    )


def test_a_dropped_stream_is_written_by_the_writer_not_by_the_finalizers_thread(
    engine, ledger, statements, fake, fake_env
):
    finalizer_threads: list[threading.Thread] = []

    def sink(event: UsageEvent) -> None:
        finalizer_threads.append(threading.current_thread())
        ledger(event)

    client = AIClient(AISettings.from_env(fake_env), on_usage=sink)
    fake.reply_stream([f"t{i} " for i in range(200)], chunk_delay=0.02)
    stream = client.stream("chat", MESSAGES, who="user:9")
    next(stream)
    del stream
    gc.collect()  # the stream's finalizer runs here, on this thread
    assert finalizer_threads == [threading.current_thread()]
    # The finalizer only handed the event over; the writer may or may not have run yet.
    assert threading.current_thread() not in inserting_threads(statements)
    assert ledger.flush()
    (writer,) = inserting_threads(statements)
    assert writer not in finalizer_threads
    (row,) = rows(engine)
    assert (row.feature, row.who, row.completion_tokens) == ("chat", "user:9", 1)
    client.close()


def test_events_are_written_in_order_across_batches(engine, ledger):
    for i in range(250):
        ledger(usage_event(who=f"user:{i}"))
    assert ledger.flush()
    assert [row.who for row in rows(engine)] == [f"user:{i}" for i in range(250)]


def test_flush_with_nothing_handed_over_starts_no_thread(ledger):
    before = threading.active_count()
    assert ledger.flush()
    assert threading.active_count() == before


def test_a_failing_write_is_logged_and_the_writer_carries_on(tmp_path, caplog):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no usage_record table yet
    ledger = UsageLedger(engine)
    with caplog.at_level(logging.ERROR, logger="shopai.usage.services"):
        ledger(usage_event(feature="suggest"))
        assert ledger.flush()
    assert "could not record AI usage" in caplog.text and "suggest" in caplog.text
    UsageRecord.__table__.create(engine)
    ledger(usage_event(feature="chat"))
    assert ledger.flush()
    assert [row.feature for row in rows(engine)] == ["chat"]
    engine.dispose()


def test_one_bad_event_does_not_lose_the_rest_of_its_batch(engine, ledger, caplog):
    too_big = 2**64  # no SQLite INTEGER holds it: the insert itself fails
    bad = UsageEvent("chat", "openai", "m", too_big, 1, 0, 1.0, None, "bad", True)
    with caplog.at_level(logging.ERROR, logger="shopai.usage.services"):
        ledger(usage_event(who="before"))
        ledger(bad)
        ledger(usage_event(who="after"))
        assert ledger.flush()
    assert [row.who for row in rows(engine)] == ["before", "after"]
    assert "could not record AI usage" in caplog.text


def test_an_idle_writer_exits_and_the_next_event_starts_another(engine, statements):
    ledger = UsageLedger(engine, idle_seconds=0)
    ledger(usage_event(who="first"))
    assert ledger.flush()
    (first,) = inserting_threads(statements)
    first.join(5)
    assert not first.is_alive()
    ledger(usage_event(who="second"))
    assert ledger.flush()
    _, second = inserting_threads(statements)
    assert second is not first
    assert [row.who for row in rows(engine)] == ["first", "second"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_forked_child_gets_its_own_writer(tmp_path):
    # NullPool: the child must not reuse the parent's pooled SQLite connections.
    engine = create_engine(f"sqlite:///{tmp_path / 'fork.db'}", poolclass=NullPool)
    UsageRecord.__table__.create(engine)
    ledger = UsageLedger(engine)
    ledger(usage_event(who="parent"))  # the parent's writer may still hold it at the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 2
        try:
            ledger(usage_event(who="child"))
            code = 0 if ledger.flush(10) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ledger.flush()
    assert sorted(row.who for row in rows(engine)) == ["child", "parent"]  # none twice
    engine.dispose()


def run_forked(body: Callable[[], int], limit: int) -> int:
    """The exit code of `body` run in a forked child (negative: the signal that ended it).
    SIGALRM ends the child after `limit` seconds, so a deadlock fails instead of hanging."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 99
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(limit)
            code = body()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_forked_child_can_fork_again_and_uses_connections_of_its_own(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'fork.db'}")  # pooled, unlike the test above
    UsageRecord.__table__.create(engine)
    checkouts: list[tuple[int, int]] = []  # (process, process that opened the connection)

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, record):
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, record, proxy):
        checkouts.append((os.getpid(), record.info["pid"]))

    ledger = UsageLedger(engine)
    ledger(usage_event(who="parent:1"))
    assert ledger.flush()  # its connection waits in the pool at the fork
    ledger(usage_event(who="parent:2"))  # the writer may still hold this one at the fork

    def record(who: str) -> int:
        ledger(usage_event(who=who))
        if not ledger.flush(5):
            return 1
        me = os.getpid()
        owners = [owner for pid, owner in checkouts if pid == me]
        return 0 if owners and set(owners) == {me} else 2  # 2: a connection not its own

    def child() -> int:
        # It forks before recording anything: the fork hooks must not wait on a lock
        # that was held for the parent's fork.
        grandchild = run_forked(lambda: record("grandchild"), 10)
        if grandchild != 0:
            print(f"the grandchild exited with {grandchild}", file=sys.stderr)
            return 3
        return record("child")

    assert run_forked(child, 15) == 0
    assert ledger.flush()
    assert sorted(row.who for row in rows(engine)) == [
        "child",
        "grandchild",
        "parent:1",
        "parent:2",
    ]  # each exactly once
    engine.dispose()


def test_events_handed_over_by_the_cycle_collector_are_all_written(engine, ledger):
    """Finalizers run on whichever thread the collector runs on, possibly one that is
    itself handing an event over, or the writer: every event must still arrive once."""
    handed_over: list[str] = []
    all_handed_over = threading.Event()

    def record(who: str) -> None:
        ledger(usage_event(who=who))
        handed_over.append(who)
        if len(handed_over) == 50:
            all_handed_over.set()

    class Dropped:
        cycle: object

    for i in range(50):
        dropped = Dropped()
        dropped.cycle = dropped  # only the cycle collector frees it, at some later allocation
        weakref.finalize(dropped, record, f"gc:{i}")
        del dropped
        ledger(usage_event(who=f"call:{i}"))
    gc.collect()  # returns at once if another thread is collecting; that one runs them
    assert all_handed_over.wait(10)
    assert ledger.flush()
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(UsageRecord)) == 100


def test_events_handed_over_just_before_exit_are_written(tmp_path):
    database = tmp_path / "exit.db"
    engine = create_engine(f"sqlite:///{database}")
    UsageRecord.__table__.create(engine)
    script = (
        "import sys\n"
        "from sqlalchemy import create_engine\n"
        "from shopai.ai.types import UsageEvent\n"
        "from shopai.usage.services import UsageLedger\n"
        "ledger = UsageLedger(create_engine(sys.argv[1]))\n"
        "for i in range(20):\n"
        "    ledger(UsageEvent('chat', 'openai', 'm', 1, 1, 0, 1.0, None, f'exit:{i}', True))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [row.who for row in rows(engine)] == [f"exit:{i}" for i in range(20)]
    engine.dispose()
