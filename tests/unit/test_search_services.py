from decimal import Decimal

import pytest

from shopai.catalog import services as catalog
from shopai.search.services import SearchFilters, search_products

from ..factories import make_category, make_product


@pytest.fixture
def shop(app):
    audio = make_category("Headphones")
    laptops = make_category("Laptops")
    make_product("Kestrel K7 Wireless Headphones", "199.00", audio, "Noise cancelling, 30 h.")
    make_product("Kestrel Buds Mini", "59.00", audio, "Tiny wireless earbuds.")
    make_product("Altura Book 14", "899.00", laptops, "A light laptop with 16 GB of memory.")
    make_product("Altura Book Pro 16", "1899.00", laptops, "Wireless charging dock included.")
    return {"audio": audio, "laptops": laptops}


def names(filters: SearchFilters, page: int = 1, per_page: int = 10) -> list[str]:
    return [p.name for p in search_products(filters, page, per_page).items]


def test_words_match_as_prefixes_in_any_order(shop):
    assert names(SearchFilters(q="nois kestr")) == ["Kestrel K7 Wireless Headphones"]


def test_name_matches_rank_above_description_matches(shop):
    found = names(SearchFilters(q="wireless"))
    assert found[0] == "Kestrel K7 Wireless Headphones"
    assert set(found) == {
        "Kestrel K7 Wireless Headphones",
        "Kestrel Buds Mini",
        "Altura Book Pro 16",
    }


def test_category_name_is_searchable(shop):
    assert set(names(SearchFilters(q="laptops"))) == {"Altura Book 14", "Altura Book Pro 16"}


def test_filters_combine(shop):
    filters = SearchFilters(
        q="wireless", category=shop["audio"], min_price=Decimal("100"), max_price=Decimal("250")
    )
    assert names(filters) == ["Kestrel K7 Wireless Headphones"]


def test_sorting_by_price(shop):
    assert names(SearchFilters(sort="price_desc"))[0] == "Altura Book Pro 16"
    assert names(SearchFilters(sort="price_asc"))[0] == "Kestrel Buds Mini"


@pytest.mark.parametrize("q", ['"', "NOT", "AND OR", "name:x", "*", "a*b)", "NEAR(a b)", "'"])
def test_query_syntax_is_treated_as_text(shop, q):
    search_products(SearchFilters(q=q), 1, 10)  # must not raise an FTS syntax error


def test_punctuation_only_query_lists_everything(shop):
    assert len(names(SearchFilters(q="!!!"))) == 4


def test_index_follows_updates_renames_and_deletes(shop):
    product = catalog.find_product("kestrel-buds-mini")
    catalog.update_product(
        product, name="Orbit Buds", price=product.price, category=product.category
    )
    assert names(SearchFilters(q="kestrel buds")) == []
    assert names(SearchFilters(q="orbit")) == ["Orbit Buds"]
    catalog.update_category(shop["audio"], "Audio")
    assert "Orbit Buds" in names(SearchFilters(q="audio"))
    catalog.delete_product(product)
    assert names(SearchFilters(q="orbit")) == []


def test_accents_are_folded(app):
    make_product("Café Grinder", category=make_category("Kitchen"))
    assert names(SearchFilters(q="cafe")) == ["Café Grinder"]


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(q="wireless"),
        SearchFilters(q="a b c k7", sort="price_asc", min_price=Decimal("1")),
    ],
)
def test_text_search_uses_the_fts_index_not_a_table_scan(shop, filters):
    from sqlalchemy import event

    from shopai.extensions import db

    statements: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and "product_fts" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        search_products(filters, 1, 10)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert statements
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        # A handful of rows: the planner would rightly scan them. Forbidding scans
        # where an index can serve shows that the GIN index matches the query.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in statements:
            plan = " | ".join(
                row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            )
            assert "ix_product_fts_document" in plan, plan
            assert "Seq Scan on product" not in plan, plan
        return
    for statement, parameters in statements:
        plan = " | ".join(
            row[3]
            for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
        assert "VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN product " not in plan + " ", plan


def test_one_letter_words_match_whole_words_only(app):
    make_product("Kestrel K 7 Speaker", category=make_category("Speakers"))
    make_product("Kite Drone", category=make_category("Drones"))
    assert names(SearchFilters(q="k")) == ["Kestrel K 7 Speaker"]


def test_a_statement_built_for_one_search_runs_another_of_its_shape(shop):
    """Statements are built once per shape (which filters are set) and run with the
    values of each search: another category or price range gets its own results, a
    search of another shape its own statement, and no search builds one again."""
    from shopai.search import statements

    def search(**filters):
        return search_products(SearchFilters(q="wireless", **filters), 1, 10)

    def found(**filters):
        return [p.name for p in search(**filters).items]

    assert found() == ["Kestrel K7 Wireless Headphones", "Kestrel Buds Mini", "Altura Book Pro 16"]
    assert found(category=shop["audio"], max_price=Decimal("250")) == [
        "Kestrel K7 Wireless Headphones",
        "Kestrel Buds Mini",
    ]
    assert found(min_price=Decimal("100")) == [
        "Kestrel K7 Wireless Headphones",
        "Altura Book Pro 16",
    ]
    assert found(min_price=Decimal("1000")) == ["Altura Book Pro 16"]  # no name holds it
    none = search(category=shop["laptops"], max_price=Decimal("1000"))
    assert (none.items, none.total) == ([], 0)
    shape = frozenset({"category_id", "max_price"})
    assert any(shape in key and "first_tier_page" in key for key in statements._BUILT)
    built = len(statements._BUILT)

    assert found(category=shop["laptops"], max_price=Decimal("2000")) == ["Altura Book Pro 16"]
    assert found(min_price=Decimal("500")) == ["Altura Book Pro 16"]
    assert found(category=shop["audio"], max_price=Decimal("100")) == ["Kestrel Buds Mini"]
    assert search(category=shop["audio"], max_price=Decimal("10")).total == 0
    assert len(statements._BUILT) == built
