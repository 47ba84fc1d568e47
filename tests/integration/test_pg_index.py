"""PostgreSQL's full-text table follows the catalog, and can be rebuilt whole."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from shopai.catalog.models import Product
from shopai.extensions import db
from shopai.search import keyword
from shopai.search.pg_index import BATCH, product_fts, reindex

from ..factories import make_category, make_product


@pytest.fixture
def on_postgres(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's index table; SQLite's FTS5 triggers are tested everywhere")


def test_reindex_rebuilds_every_document_in_batches(on_postgres, monkeypatch):
    monkeypatch.setattr("shopai.search.pg_index.BATCH", 2)
    category = make_category("耳机")
    for n in range(5):
        make_product(f"索尼无线降噪耳机 {n}", category=category, description="Wi-Fi")
    db.session.execute(product_fts.delete())
    assert keyword.count(None, "降噪") == 0
    reindex(db.session.connection())
    db.session.commit()
    assert keyword.count(None, "降噪") == 5
    assert keyword.count(None, "wifi 耳机") == 5  # joined form, and the category
    assert BATCH > 2  # the real batch size was only patched for this test


def test_writes_outside_the_orm_wait_for_a_reindex(on_postgres):
    make_product("Kestrel K7 Wireless Headphones")
    db.session.execute(update(Product).values(name="Brightwell Toaster"))
    db.session.commit()
    assert keyword.count(None, "toaster") == 0
    reindex(db.session.connection(), db.session.scalars(db.select(Product.id)))
    db.session.commit()
    assert keyword.count(None, "toaster") == 1
    assert keyword.count(None, "kestrel") == 0


def test_the_reindex_command_rebuilds_the_table(on_postgres, runner):
    make_product("Kestrel K7 Wireless Headphones")
    db.session.execute(product_fts.delete())
    db.session.commit()
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "1 product document(s) written" in result.output
    assert keyword.count(None, "kestrel") == 1


def test_the_reindex_command_leaves_sqlite_to_its_triggers(app, runner):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's answer")
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0
    assert "nothing to do" in result.output
