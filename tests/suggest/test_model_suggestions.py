"""Model-made suggestions: off the keystroke path, verified by the catalog, one call per query."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.extensions import db
from shopai.jobs import Job, execute_job
from shopai.suggest.models import ProductQuery, QueryExpansion
from shopai.suggest.tasks import (
    EXPANSION_KIND,
    PRODUCT_QUERIES_KIND,
    generate_product_queries,
    request_expansion,
)
from shopai.usage.models import UsageRecord

from ..factories import make_category, make_product
from ..fakes.openai_server import FakeOpenAI


@pytest.fixture
def fake_ai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def shop(app_config, fake_ai):
    """A shop whose suggest feature talks to the fake OpenAI-compatible server."""
    settings = AISettings.from_env(
        {
            "OPENAI_BASE_URL": fake_ai.base_url,
            "SHOPAI_SUGGEST_RETRIES": "0",
            "SHOPAI_AI_BREAKER_RESET_SECONDS": "600",
        }
    )
    app = create_app({**app_config, "SHOPAI_AI": settings})
    with app.app_context():
        headphones = make_category("Headphones")
        make_product(
            "Kestrel K7 Wireless Headphones",
            "199.00",
            headphones,
            "Over-ear noise cancelling headphones with 30 hours of battery.",
        )
        make_product("Kestrel Buds Mini", "59.00", headphones, "Tiny wireless earbuds.")
        make_product("Norvik Edu 11 Laptop", "399.00", make_category("Laptops"), "For school.")
        yield app
        flush_usage()
        ai_client().close()
        db.session.remove()
        db.engine.dispose()


WIDGET = {"X-Requested-With": "fetch"}  # what the search box's script sends


def chat_calls(fake: FakeOpenAI) -> int:
    return len(fake.requests_to("/chat/completions"))


def run_jobs(kind: str) -> list[str]:
    ids = db.session.scalars(select(Job.id).where(Job.kind == kind).order_by(Job.id)).all()
    return [execute_job(job_id) for job_id in ids]


def stored_queries(product_id: int) -> list[str]:
    rows = db.session.scalars(
        select(ProductQuery.text).where(ProductQuery.product_id == product_id)
    )
    return sorted(rows)


def test_only_queries_that_find_their_product_are_kept(shop, fake_ai):
    fake_ai.reply_json(
        {
            "queries": [
                "Wireless Headphones",
                "bokonon",
                "noise cancelling headphones",
                "cheap laptop",
                "<img src=x onerror=alert(1)>",
            ]
        }
    )
    assert generate_product_queries(1, who="test") == 2
    assert stored_queries(1) == ["noise cancelling headphones", "wireless headphones"]
    request = fake_ai.requests_to("/chat/completions")[-1].body
    assert request["response_format"]["type"] == "json_schema"
    assert "Kestrel K7 Wireless Headphones" in request["messages"][-1]["content"]


def test_a_rerun_replaces_the_set_instead_of_adding_to_it(shop, fake_ai):
    fake_ai.reply_json({"queries": ["wireless headphones", "kestrel k7"]})
    generate_product_queries(1, who="test")
    fake_ai.reply_json({"queries": ["kestrel k7"]})
    generate_product_queries(1, who="test")
    assert stored_queries(1) == ["kestrel k7"]


def test_saving_a_product_queues_its_queries_as_a_job(shop, fake_ai):
    assert chat_calls(fake_ai) == 0  # saving never waited for the model
    for queries in (["wireless headphones"], ["kestrel buds"], ["school laptop"]):
        fake_ai.reply_json({"queries": queries})  # one job per saved product, in order
    assert run_jobs(PRODUCT_QUERIES_KIND) == ["succeeded"] * 3
    assert [stored_queries(pid) for pid in (1, 2, 3)] == [
        ["wireless headphones"],
        ["kestrel buds"],
        ["school laptop"],
    ]


def test_a_settled_query_is_expanded_once_whatever_is_asked_again(shop, fake_ai):
    fake_ai.reply_json({"queries": ["kestrel earbuds", "wireless earbuds", "bokonon"]})
    client = shop.test_client()
    for _ in range(3):
        assert (
            client.get("/api/suggest?q=earphones+for+running&settled=1", headers=WIDGET).status_code
            == 200
        )
        run_jobs(EXPANSION_KIND)
    assert chat_calls(fake_ai) == 1
    row = db.session.scalar(select(QueryExpansion))
    assert (row.query, row.status) == ("earphones for running", "done")
    assert row.suggestions == ["kestrel earbuds", "wireless earbuds"]
    served = client.get("/api/suggest?q=earphones+for+running&settled=1", headers=WIDGET).get_json()
    ai_texts = [s["text"] for s in served["suggestions"] if s["source"] == "ai"]
    assert set(ai_texts) <= {"kestrel earbuds", "wireless earbuds"} and ai_texts


def test_typing_never_calls_the_model(shop, fake_ai):
    client = shop.test_client()
    query = "earphones for running"
    for end in range(1, len(query) + 1):
        assert client.get("/api/suggest", query_string={"q": query[:end]}).status_code == 200
    run_jobs(EXPANSION_KIND)
    assert chat_calls(fake_ai) == 0
    assert db.session.scalar(select(QueryExpansion.id)) is None


def test_a_failing_backend_fails_the_expansion_and_suggestions_still_come(shop, fake_ai):
    for _ in range(10):
        fake_ai.reply_error(500)
    request_expansion("earphones for running")
    job = db.session.scalar(select(Job).where(Job.kind == EXPANSION_KIND))
    job.max_attempts = 1
    db.session.commit()
    assert run_jobs(EXPANSION_KIND) == ["failed"]
    assert db.session.scalar(select(QueryExpansion.status)) == "failed"
    served = shop.test_client().get("/api/suggest?q=kestrel").get_json()
    assert any("kestrel" in s["text"] for s in served["suggestions"])


def test_garbage_from_the_model_is_dropped_without_retrying(shop, fake_ai):
    fake_ai.reply_chat("bokonon bokonon bokonon")
    fake_ai.reply_chat("still not json")
    request_expansion("earphones for running")
    assert run_jobs(EXPANSION_KIND) == ["succeeded"]
    row = db.session.scalar(select(QueryExpansion))
    assert row.status == "failed" and row.suggestions == []
    assert chat_calls(fake_ai) == 2  # the question and one repair, then never again


def test_the_daily_token_budget_stops_model_work(shop, fake_ai):
    shop.config["SHOPAI_SUGGEST_DAILY_TOKENS"] = 100
    db.session.add(
        UsageRecord(
            feature="suggest",
            backend="openai",
            model="m",
            prompt_tokens=80,
            completion_tokens=40,
            images=0,
            latency_ms=1,
            ok=True,
        )
    )
    db.session.commit()
    request_expansion("earphones for running")
    run_jobs(EXPANSION_KIND)
    assert chat_calls(fake_ai) == 0
    assert db.session.scalar(select(QueryExpansion.status)) == "failed"


def test_spellings_of_one_query_are_one_question(shop, fake_ai):
    for spelling in ("usb-c hub", "USB c hub!", "usb.c  hub", "usb\u2010c hub"):
        request_expansion(spelling)
    assert db.session.scalars(select(QueryExpansion.query)).all() == ["usb c hub"]
    assert len(db.session.scalars(select(Job).where(Job.kind == EXPANSION_KIND)).all()) == 1


def test_a_failed_expansion_may_be_asked_again_a_day_later(shop, fake_ai):
    from datetime import timedelta

    from shopai.db_types import utcnow

    fake_ai.reply_error(400)  # refused: no retry
    request_expansion("earphones for running")
    run_jobs(EXPANSION_KIND)
    row = db.session.scalar(select(QueryExpansion))
    assert row.status == "failed"
    request_expansion("earphones for running")  # the same day: nothing
    assert chat_calls(fake_ai) == 1
    row.updated_at = utcnow() - timedelta(days=2)
    db.session.commit()
    fake_ai.reply_json({"queries": ["kestrel buds"]})
    request_expansion("earphones for running")
    assert "succeeded" in run_jobs(EXPANSION_KIND)
    assert db.session.scalar(select(QueryExpansion.suggestions)) == ["kestrel buds"]


def test_new_expansions_are_capped_per_day_for_everyone(shop, fake_ai):
    shop.config["SHOPAI_SUGGEST_DAILY_EXPANSIONS"] = 1
    request_expansion("earphones for running")
    request_expansion("something else entirely")
    assert db.session.scalars(select(QueryExpansion.query)).all() == ["earphones for running"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", **WIDGET}],
)
def test_other_sites_cannot_make_a_settled_query_cost_a_model_call(shop, fake_ai, headers):
    """An <img src=/api/suggest?...&settled=1> on another site: answered, nothing asked."""
    client = shop.test_client()
    response = client.get("/api/suggest?q=earphones+for+running&settled=1", headers=headers)
    assert response.status_code == 200
    assert db.session.scalar(select(QueryExpansion.id)) is None
    client.get(
        "/api/suggest?q=earphones+for+running&settled=1",
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert db.session.scalar(select(QueryExpansion.query)) == "earphones for running"
