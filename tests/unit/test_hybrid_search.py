"""Search by meaning, in Chinese, and across spellings; vectors that know when they are stale."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shopai.catalog import services as catalog
from shopai.extensions import db
from shopai.search.embeddings import refresh_embeddings, stale_product_ids
from shopai.search.models import ProductEmbedding
from shopai.search.services import SearchFilters, best_ids, search_products

from ..factories import make_category, make_product

CATALOG = {
    "Headphones": [
        ("Kestrel K7 Wireless Headphones", "199.00", "Over-ear noise cancelling headphones."),
        ("Kestrel Buds Mini", "59.00", "Tiny true wireless earbuds for running."),
    ],
    "Laptops": [
        ("Norvik Edu 11 Student Laptop", "399.00", "A light, durable laptop for school work."),
        ("Norvik AirLite 13 Laptop", "999.00", "Thin and light with a full-day battery."),
    ],
    "Networking": [
        ("Stratos Mesh Wi-Fi 6 System", "249.00", "Whole-home mesh networking, two units."),
        ("Stratos WiFi 7 Router", "299.00", "Tri-band router for gaming."),
    ],
    "Computer Accessories": [
        ("Ironleaf 7-in-1 USB-C Hub", "49.00", "HDMI, card reader and power delivery."),
    ],
    "Televisions": [("Corvana 55-inch 4K QLED TV", "699.00", "Bright HDR television.")],
    "Kitchen": [
        ("Brightwell Café Espresso Machine", "349.00", "Fifteen-bar pump for espresso."),
        ("Brightwell Toaster", "39.00", "Two slots, six browning levels."),
    ],
    "耳机": [("索尼无线降噪耳机 WH-1000XM5", "2499.00", "头戴式 续航30小时。")],
}


@pytest.fixture
def shop(app):
    for category_name, products in CATALOG.items():
        category = make_category(category_name)
        for name, price, description in products:
            make_product(name, price, category, description)


@pytest.fixture
def embedded(shop):
    """The catalog with its vectors, computed by the embedded MiniLM model."""
    refresh_embeddings()


def names(q: str, **filters) -> list[str]:
    return [p.name for p in search_products(SearchFilters(q=q, **filters), 1, 20).items]


# -- Chinese and spellings (full-text alone) -------------------------------------------


@pytest.mark.parametrize("q", ["降噪", "无线耳机", "索尼", "耳机 WH-1000XM5", "降噪耳机"])
def test_cjk_words_match_inside_longer_runs(shop, q):
    assert names(q) == ["索尼无线降噪耳机 WH-1000XM5"]


def test_cjk_search_needs_every_character_covered(shop):
    assert names("噪音") == []  # 噪 is there, 音 is not


def test_cjk_search_works_on_the_page_and_the_api(client, shop):
    page = client.get("/search", query_string={"q": "无线耳机"}).get_data(as_text=True)
    assert "索尼无线降噪耳机 WH-1000XM5" in page
    api = client.get("/api/products", query_string={"q": "降噪"}).get_json()
    assert [item["name"] for item in api["items"]] == ["索尼无线降噪耳机 WH-1000XM5"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("mesh wifi", "Stratos Mesh Wi-Fi 6 System"),
        ("wi-fi 7", "Stratos WiFi 7 Router"),
        ("usbc hub", "Ironleaf 7-in-1 USB-C Hub"),
        ("usb-c", "Ironleaf 7-in-1 USB-C Hub"),
        ("4k tv", "Corvana 55-inch 4K QLED TV"),
        ("cafe espresso", "Brightwell Café Espresso Machine"),
    ],
)
def test_joined_hyphenated_and_accented_spellings_meet(shop, q, expected):
    assert expected in names(q)


# -- meaning ------------------------------------------------------------------------------


def test_search_finds_by_meaning(embedded):
    found = names("something to listen to music on the train")
    assert found and found[0] in {"Kestrel K7 Wireless Headphones", "Kestrel Buds Mini"}
    assert names("laptop for college")[0] == "Norvik Edu 11 Student Laptop"


def test_a_query_that_matches_some_products_well_does_not_trail_off(embedded):
    """Above the floor but far below the best match: a USB hub is no laptop for college."""
    assert set(names("laptop for college")) == {
        "Norvik Edu 11 Student Laptop",
        "Norvik AirLite 13 Laptop",
    }


def test_an_exact_name_still_ranks_first(embedded):
    assert names("Kestrel Buds Mini")[0] == "Kestrel Buds Mini"
    brand = names("brightwell")
    assert set(brand[:2]) == {"Brightwell Café Espresso Machine", "Brightwell Toaster"}


def test_a_query_that_matches_nothing_well_finds_nothing(embedded):
    assert names("qwzx vbnm") == []


@pytest.mark.parametrize(
    ("q", "category", "limit"),
    [
        ("laptop for college", None, 20),
        ("something to listen to music on the train", None, 1),
        ("wireless", "headphones", 20),
        ("", "kitchen", 20),  # no words: the category's products
        ("降噪耳机", None, 5),  # full-text alone: the vectors read English only
    ],
)
def test_best_ids_are_the_first_page_of_a_search(embedded, q, category, limit):
    """What the assistant reads: the same products as the search page, in its order."""
    filters = SearchFilters(q=q, category=catalog.find_category(category) if category else None)
    page = search_products(filters, 1, limit).items
    assert page and best_ids(filters, limit) == [product.id for product in page]


def test_meaning_respects_filters_and_sorting(embedded, app):
    laptops = catalog.find_category("laptops")
    found = names("laptop for college", category=laptops, sort="price_desc")
    assert found[0] == "Norvik AirLite 13 Laptop"
    assert set(found) <= {"Norvik Edu 11 Student Laptop", "Norvik AirLite 13 Laptop"}


def test_vectors_go_stale_on_edit_and_fresh_on_refresh(embedded, app):
    assert stale_product_ids() == []
    toaster = catalog.find_product("brightwell-toaster")
    catalog.update_product(
        toaster,
        name="Brightwell Four-Slice Toaster",
        price=toaster.price,
        category=toaster.category,
        description=toaster.description,
    )
    assert stale_product_ids() == [toaster.id]
    assert refresh_embeddings() == 1
    assert stale_product_ids() == []


def test_another_embeddings_model_makes_every_vector_stale(embedded, app):
    total = db.session.scalar(select(func.count(ProductEmbedding.product_id)))
    db.session.execute(ProductEmbedding.__table__.update().values(model="older-model"))
    db.session.commit()
    assert len(stale_product_ids()) == total


# -- when embeddings fail -------------------------------------------------------------


@pytest.fixture
def fake_ai():
    from ..fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def api_shop(app_config, fake_ai):
    """The shop with embeddings from an OpenAI-compatible server (the fake one)."""
    from shopai import create_app
    from shopai.ai.settings import AISettings
    from shopai.ai_service import ai_client, flush_usage

    settings = AISettings.from_env(
        {
            "OPENAI_BASE_URL": fake_ai.base_url,
            "SHOPAI_EMBEDDING_BACKEND": "api",
            "SHOPAI_EMBEDDINGS_RETRIES": "0",
            "SHOPAI_AI_BREAKER_RESET_SECONDS": "600",
        }
    )
    app = create_app({**app_config, "SHOPAI_AI": settings, "SHOPAI_SEARCH_EMBED_TIMEOUT": 0.3})
    with app.app_context():
        for category_name, products in CATALOG.items():
            category = make_category(category_name)
            for name, price, description in products:
                make_product(name, price, category, description)
        refresh_embeddings()
        yield app
        flush_usage()
        ai_client().close()
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("failure", ["error", "slow", "garbage"])
def test_search_answers_from_full_text_when_embeddings_fail(api_shop, fake_ai, failure):
    for _ in range(2):  # both searches below
        if failure == "error":
            fake_ai.reply_error(500, kind="embeddings")
        elif failure == "slow":
            fake_ai.delay_next(5, kind="embeddings")
        else:
            fake_ai.reply_malformed(kind="embeddings")
    client = api_shop.test_client()
    response = client.get("/search", query_string={"q": "kestrel headphones"})
    assert response.status_code == 200
    assert "Kestrel K7 Wireless Headphones" in response.get_data(as_text=True)
    api = client.get("/api/products", query_string={"q": "mesh wifi"})
    assert [item["name"] for item in api.get_json()["items"]] == ["Stratos Mesh Wi-Fi 6 System"]


def test_query_vectors_are_computed_once_per_query(api_shop, fake_ai):
    before = len(fake_ai.requests_to("/embeddings"))
    for _ in range(3):
        search_products(SearchFilters(q="wireless  Headphones"), 1, 10)
    search_products(SearchFilters(q="wireless headphones"), 1, 10)
    assert len(fake_ai.requests_to("/embeddings")) == before + 1


# -- kept current by jobs ---------------------------------------------------------------


def test_saving_a_product_queues_its_vector_and_the_job_computes_it(shop, app):
    from shopai.jobs import Job, execute_job
    from shopai.search.tasks import REFRESH_KIND

    jobs = list(db.session.scalars(select(Job).where(Job.kind == REFRESH_KIND)))
    assert jobs, "creating products queued no vector job"
    for job in jobs:
        assert execute_job(job.id) in ("succeeded", "skipped")
    assert stale_product_ids() == []

    headphones = catalog.find_product("kestrel-k7-wireless-headphones")
    catalog.update_product(
        headphones,
        name=headphones.name,
        price=headphones.price,
        category=headphones.category,
        description="Now with a carrying case.",
    )
    queued = db.session.scalars(
        select(Job).where(Job.kind == REFRESH_KIND, Job.status == "queued")
    ).all()
    assert [job.payload["product_ids"] for job in queued] == [[headphones.id]]
    assert execute_job(queued[0].id) == "succeeded"
    assert stale_product_ids() == []


def test_saving_unchanged_text_queues_nothing_new(embedded, app):
    from shopai.jobs import Job

    before = db.session.scalar(select(func.count(Job.id)))
    toaster = catalog.find_product("brightwell-toaster")
    catalog.update_product(
        toaster,
        name=toaster.name,
        price=toaster.price + 1,
        category=toaster.category,
        description=toaster.description,
    )
    assert db.session.scalar(select(func.count(Job.id))) == before


def test_paging_through_results_shows_every_match_once(app, monkeypatch):
    """Fusing a pool that grew with the page number reordered earlier pages."""
    from shopai.search import services

    monkeypatch.setattr(services, "KEYWORD_POOL", 5)
    speakers = make_category("Speakers")
    for n in range(23):
        make_product(f"Fennick Speaker {n:02d}", "49.00", speakers, "Portable speaker.")
    make_product("Fennick Headphones", "99.00", make_category("Headphones"), "Speaker drivers.")
    refresh_embeddings()
    seen: list[str] = []
    page = 1
    while True:
        result = search_products(SearchFilters(q="speaker"), page, 4)
        seen += [p.name for p in result.items]
        if not result.has_next:
            break
        page += 1
    assert len(seen) == len(set(seen)) == result.total


def test_an_older_vector_never_overwrites_a_newer_edit(embedded, app):
    """A job that read the text before an edit finished last and marked the product
    fresh with the old text's vector."""
    from shopai.search.embeddings import _store, embeddings_model, product_text

    toaster = catalog.find_product("brightwell-toaster")
    old_text = product_text(toaster.name, toaster.category.name, toaster.description)
    catalog.update_product(
        toaster,
        name="Brightwell Four-Slice Toaster",
        price=toaster.price,
        category=toaster.category,
        description=toaster.description,
    )
    assert _store(embeddings_model(), [toaster.id], [old_text], [[0.1] * 384]) == 0
    assert stale_product_ids() == [toaster.id]


def test_renaming_a_big_category_queues_one_small_job(shop, app, monkeypatch):
    from shopai.jobs import Job
    from shopai.search import tasks

    monkeypatch.setattr(tasks, "MAX_LISTED_PRODUCTS", 1)
    catalog.update_category(catalog.find_category("kitchen"), "Kitchen Appliances")
    job = db.session.scalars(
        select(Job).where(Job.kind == tasks.REFRESH_KIND).order_by(Job.id.desc())
    ).first()
    assert job.payload == {"product_ids": None}
