"""Submitted searches are counted off the request, in batches, each exactly once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select

from shopai.background import BackgroundWriter
from shopai.extensions import db
from shopai.suggest import services
from shopai.suggest.models import SearchQuery, SearchVisitor
from shopai.suggest.recording import EXTENSION_KEY, flush_searches
from shopai.suggest.services import record_searches

from .test_views import fill, rows


@pytest.fixture
def shop(app):
    fill(app)
    return app


def test_the_search_page_writes_no_count_in_the_request(client, shop):
    writes: list[threading.Thread] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")) and "search_" in statement:
            writes.append(threading.current_thread())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/search?q=kestrel").status_code == 200
        assert threading.current_thread() not in writes
        assert flush_searches()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert writes and threading.current_thread() not in writes
    assert rows() == {"kestrel": (1, 2, 0)}


def test_each_search_is_counted_exactly_once(client, shop):
    for _ in range(5):  # the first rendered, the others from the page cache
        client.get("/search?q=kestrel")
    assert flush_searches()
    assert flush_searches()  # nothing left: flushing again writes nothing twice
    assert rows() == {"kestrel": (5, 2, 0)}
    client.get("/search?q=kestrel")
    assert rows() == {"kestrel": (6, 2, 0)}


def test_flushing_an_app_that_counted_nothing_starts_no_writer(app):
    assert flush_searches()
    assert EXTENSION_KEY not in app.extensions


def test_a_batch_counts_repeats_in_one_row_and_each_visitor_once(shop):
    counted = record_searches(
        [
            ("Kestrel", 2, "192.0.2.1"),
            ("kestrel ", 3, "192.0.2.1"),
            ("kestrel", 3, "192.0.2.2"),
            ("   ", 9, "192.0.2.3"),  # no words: not a search
            ("nothing like it", 0, "192.0.2.3"),  # found nothing: no visitor counted
        ]
    )
    assert counted == 2  # rows
    assert rows() == {"kestrel": (3, 3, 0), "nothing like it": (1, 0, 0)}
    assert db.session.scalar(select(func.count()).select_from(SearchVisitor)) == 2


def test_one_bad_search_in_a_batch_costs_only_itself(shop, monkeypatch):
    upsert = services._upsert

    def failing(counts):
        if any(count.query == "bad" for count in counts):
            db.session.execute(select(func.no_such_function()))
        upsert(counts)

    monkeypatch.setattr(services, "_upsert", failing)
    assert record_searches([("kestrel", 2, None), ("bad", 1, None), ("solvane", 1, None)]) == 2
    found = {row.query: row.submitted for row in db.session.scalars(select(SearchQuery))}
    assert found == {"kestrel": 1, "solvane": 1}


class Collected(BackgroundWriter[int]):
    def __init__(self, engine, **options):
        super().__init__(engine, **options)
        self.batches: list[list[int]] = []

    def write(self, batch: list[int]) -> None:
        self.batches.append(batch)


def test_a_lingering_writer_gathers_a_batch_and_a_flush_cuts_the_wait_short(app):
    writer = Collected(db.engine, linger_seconds=600)
    for item in range(3):
        writer(item)
    assert writer.flush(10)  # long before the linger would have ended
    assert writer.batches == [[0, 1, 2]]


def test_a_write_that_raises_is_logged_and_the_writer_carries_on(app, caplog):
    class Failing(Collected):
        def write(self, batch: list[int]) -> None:
            if 0 in batch:
                raise RuntimeError("no")
            super().write(batch)

    writer = Failing(db.engine)
    writer(0)
    assert writer.flush(10)
    writer(1)
    assert writer.flush(10)
    assert writer.batches == [[1]]
    assert "could not write 1 item" in caplog.text
