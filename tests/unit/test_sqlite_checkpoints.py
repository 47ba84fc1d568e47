"""SQLite's WAL checkpoints run on the checkpointer's thread, never in a commit."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from shopai import sqlite_checkpoints
from shopai.db_setup import configure_engine

ROWS_OVER_A_THOUSAND_PAGES = 2400  # two 2 kB rows per 4 kB page: SQLite's default net


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "wal.db"


def built_engine(database: Path) -> Engine:
    engine = create_engine(f"sqlite:///{database}")
    configure_engine(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    assert checkpointer(engine).flush()  # the table's checkpoint is done with
    return engine


@pytest.fixture
def engine(database: Path) -> Iterator[Engine]:
    engine = built_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture
def flushed_only(database: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine whose checkpointer waits a minute after commits, unless flushed: set
    before it is built, since a writer thread takes its wait as it starts waiting."""
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_SECONDS", 60.0)
    engine = built_engine(database)
    yield engine
    engine.dispose()


def checkpointer(engine: Engine) -> sqlite_checkpoints.Checkpointer:
    installed = sqlite_checkpoints.install(engine)
    assert installed is not None
    return installed


def checkpoints_by_thread(engine: Engine) -> list[str]:
    """The names of the threads that run a checkpoint on `engine` from now on."""
    threads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "wal_checkpoint" in statement:
            threads.append(threading.current_thread().name)

    event.listen(engine, "before_cursor_execute", seen)
    return threads


def write_rows(engine: Engine, count: int, commits: int) -> None:
    for batch in range(commits):
        with engine.begin() as connection:
            for i in range(count // commits):
                row = {"v": f"{batch}-{i}-" + "x" * 2000}
                connection.execute(text("INSERT INTO t (v) VALUES (:v)"), row)


def test_connections_leave_checkpoints_to_the_thread_and_keep_a_safety_net(engine):
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        limit = connection.exec_driver_sql("PRAGMA journal_size_limit").scalar()
    assert pages == sqlite_checkpoints.SAFETY_NET_PAGES
    assert limit == sqlite_checkpoints.LOG_SIZE_LIMIT_BYTES
    assert sqlite_checkpoints.install(engine) is checkpointer(engine)  # one per engine


def test_commits_leave_the_log_to_the_thread_which_checkpoints_once_for_all(flushed_only, database):
    """Past SQLite's default 1,000 pages, the commits write to the log only (the
    database file does not grow); the checkpointer then copies it all at once."""
    engine = flushed_only
    threads = checkpoints_by_thread(engine)
    size_before = database.stat().st_size

    write_rows(engine, ROWS_OVER_A_THOUSAND_PAGES, commits=40)
    assert database.stat().st_size == size_before  # no checkpoint in any commit
    assert checkpointer(engine).flush(timeout=10)

    assert threads == [sqlite_checkpoints.WRITER_NAME]  # 40 commits, one checkpoint
    assert checkpointer(engine).checkpoints == 2  # with the fixture's table's
    assert database.stat().st_size > size_before + 1000 * 4096
    with engine.connect() as connection:
        _busy, logged, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert copied == logged > 1000


def test_the_checkpointer_runs_by_itself_after_commits(engine):
    threads = checkpoints_by_thread(engine)
    write_rows(engine, 10, commits=10)
    deadline = time.monotonic() + 10  # waits for it; the figure asserts nothing
    while not threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threads and set(threads) == {sqlite_checkpoints.WRITER_NAME}


def used_engine(database: Path) -> weakref.ref[Engine]:
    engine = create_engine(f"sqlite:///{database}")
    configure_engine(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (v TEXT)"))
    assert checkpointer(engine).flush()
    return weakref.ref(engine)


def test_an_engine_dropped_with_its_checkpointer_is_freed(database):
    dropped = used_engine(database)
    deadline = time.monotonic() + 10  # until the idle writer thread has let go of it
    while (gc.collect(), dropped())[1] is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dropped() is None


def test_a_removed_database_is_not_checkpointed_into_a_new_file(flushed_only, database):
    """A throwaway shop (a test's, a benchmark's) removed before the checkpoint is due."""
    engine = flushed_only
    write_rows(engine, 2, commits=2)
    engine.dispose()
    for leftover in database.parent.glob(database.name + "*"):
        leftover.unlink()
    assert checkpointer(engine).flush()
    assert not database.exists()
    assert checkpointer(engine).checkpoints == 1  # the fixture's table's, none since


def test_an_in_memory_database_has_no_checkpointer():
    assert sqlite_checkpoints.install(create_engine("sqlite://")) is None
