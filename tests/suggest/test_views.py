"""The suggestion endpoints: JSON shape and errors, what gets recorded, CSRF, limits, admin."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from shopai import create_app
from shopai.auth.models import User
from shopai.extensions import db
from shopai.jobs import Job
from shopai.page_cache import SEARCH_HITS_HEADER
from shopai.suggest.models import BlockedTerm, SearchQuery, SearchVisitor
from shopai.suggest.recording import flush_searches

from ..factories import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_token_from,
    make_category,
    make_product,
)


def fill(app: Flask) -> None:
    app.config["SHOPAI_SUGGEST_RECHECK_SECONDS"] = 0.0
    headphones = make_category("Headphones")
    make_product("Kestrel K7 Wireless Headphones", "199.00", headphones, "Noise cancelling.")
    make_product("Kestrel Buds Mini", "59.00", headphones, "Tiny wireless earbuds.")
    make_product("Solvane Halo Wireless Headset", "89.00", headphones, "For calls.")
    make_product("Norvik Edu 11 Laptop", "399.00", make_category("Laptops"), "For school.")


@pytest.fixture
def shop(app):
    fill(app)
    return app


@pytest.fixture
def protected(app_config: dict):
    """The app as deployed: CSRF and rate limits on (tight ones, to reach them)."""
    app = create_app(
        {
            **app_config,
            "WTF_CSRF_ENABLED": True,
            "RATELIMIT_ENABLED": True,
            "SHOPAI_SUGGEST_RATE_LIMIT": "6 per minute",
            "SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT": "1 per minute",
            "SHOPAI_SUGGEST_EXPANSION_GLOBAL_LIMIT": "2 per minute",
        }
    )
    with app.app_context():
        fill(app)
        yield app
        db.session.remove()
        db.engine.dispose()


def rows() -> dict[str, tuple[int, int | None, int]]:
    assert flush_searches()  # the search page counts in the background
    found = db.session.scalars(select(SearchQuery).order_by(SearchQuery.query))
    return {row.query: (row.submitted, row.last_hits, row.clicks) for row in found}


def page_token(client) -> str:
    return csrf_token_from(client.get("/product-search-gpt").get_data(as_text=True))


# -- GET /api/suggest ------------------------------------------------------------------


def test_suggest_api_answers_in_the_documented_shape(client, shop):
    response = client.get("/api/suggest", query_string={"q": "Wireless Hea"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=10"
    body = response.get_json()
    assert body["query"] == "Wireless Hea" and body["normalized"] == "wireless hea"
    first = body["suggestions"][0]
    assert set(first) == {"text", "source", "hits", "highlight"}
    assert first["source"] == "catalog" and first["hits"] > 0
    assert first["highlight"] == [[0, 8], [9, 12]]
    product = next(p for p in body["products"] if p["name"].startswith("Kestrel K7"))
    assert product == {
        "id": product["id"],
        "name": "Kestrel K7 Wireless Headphones",
        "price": "199.00",
        "url": "/product/kestrel-k7-wireless-headphones",
        "thumbnail_url": None,
        "highlight": [[11, 19], [20, 23]],
    }
    categories = client.get("/api/suggest?q=headph").get_json()["categories"]
    assert categories == [
        {"id": categories[0]["id"], "name": "Headphones", "url": "/category/headphones",
         "highlight": [[0, 6]]}
    ]  # fmt: skip


def test_limit_and_settled_parameters(client, shop):
    assert len(client.get("/api/suggest?q=k&limit=1").get_json()["suggestions"]) <= 1
    assert len(client.get("/api/suggest?q=kestrel&limit=2").get_json()["suggestions"]) == 2
    assert client.get("/api/suggest?q=kestrel&limit=20&settled=0").status_code == 200
    assert client.get("/api/suggest?q=kestrel&limit=&settled=").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"q": "kes", "limit": "abc"}, "limit"),
        ({"q": "kes", "limit": "0"}, "limit"),
        ({"q": "kes", "limit": "21"}, "limit"),
        ({"q": "kes", "limit": "1.5"}, "limit"),
        ({"q": "k" * 101}, "q"),
    ],
)
def test_bad_parameters_get_a_json_400(client, shop, query, field):
    response = client.get("/api/suggest", query_string=query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 400 and error["name"] == "Bad Request"
    assert field in error["fields"]


# -- what is recorded ------------------------------------------------------------------


def test_keystrokes_are_never_stored_only_the_submitted_search(client, shop):
    query = "wireless headphones"
    for end in range(1, len(query) + 1):
        assert client.get("/api/suggest", query_string={"q": query[:end]}).status_code == 200
    assert client.get("/api/suggest", query_string={"q": query, "settled": "1"}).status_code == 200
    assert rows() == {}

    page = client.get("/search", query_string={"q": "Wireless  Headphones"})
    assert page.status_code == 200 and SEARCH_HITS_HEADER not in page.headers
    assert rows() == {"wireless headphones": (1, 3, 0)}  # the category counts too


def test_cached_search_pages_count_too_but_not_later_pages_or_filters(client, shop):
    for _ in range(3):
        response = client.get("/search?q=kestrel")  # the second and third come from the cache
        assert SEARCH_HITS_HEADER not in response.headers
    client.get("/search?q=kestrel&page=2")
    client.get("/search?q=kestrel&category=headphones")
    client.get("/search?q=kestrel&min_price=10")
    client.get("/search?q=")
    client.head("/search?q=kestrel")
    assert rows() == {"kestrel": (3, 2, 0)}
    client.get("/search?q=nothing+like+it")
    assert rows()["nothing like it"] == (1, 0, 0)


def test_submitted_searches_become_popular_suggestions(client, shop):
    for _ in range(3):  # one visitor repeating a search does not make it popular
        client.get("/search?q=kestrel+buds")
    assert flush_searches()
    assert client.get("/api/suggest?q=").get_json()["suggestions"] == []
    for address in ("192.0.2.2", "192.0.2.3"):
        client.get("/search?q=kestrel+buds", environ_base={"REMOTE_ADDR": address})
    assert flush_searches()
    body = client.get("/api/suggest?q=").get_json()
    assert [(s["text"], s["source"]) for s in body["suggestions"]] == [("kestrel buds", "popular")]
    assert client.get("/api/suggest?q=kes").get_json()["suggestions"][0]["text"] == "kestrel buds"


# -- POST /api/suggest/clicks ------------------------------------------------------------


def test_planted_searches_never_become_popular(client, shop):
    planted = "k7 " * 12 + "buy at evil.example"
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"):
        client.get("/search", query_string={"q": planted}, environ_base={"REMOTE_ADDR": address})
    assert flush_searches()
    assert client.get("/api/suggest?q=k").get_json()["suggestions"] == []
    assert db.session.scalars(select(SearchVisitor)).all() == []


def test_clicks_need_the_csrf_token_and_record_only_the_picked_text(protected):
    client = protected.test_client()
    click = {"query": "kestrel b", "text": "Kestrel Buds", "source": "catalog"}
    refused = client.post("/api/suggest/clicks", json=click)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == 400
    token = page_token(client)
    response = client.post("/api/suggest/clicks", json=click, headers={"X-CSRFToken": token})
    assert response.status_code == 204 and response.data == b""
    assert rows() == {"kestrel buds": (0, None, 1)}  # not "kestrel b"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "kestrel", "source": "catalog", "query": 5}, "query"),
        ({"source": "catalog"}, "text"),
        ({"text": "   ", "source": "catalog"}, "text"),
        ({"text": "k" * 101, "source": "catalog"}, "text"),
        ({"text": "kestrel", "source": "elsewhere"}, "source"),
        ({"text": "kestrel"}, "source"),
        (["kestrel"], "body"),
    ],
)
def test_bad_clicks_get_a_json_400(client, shop, body, field):
    response = client.post("/api/suggest/clicks", json=body)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]
    assert rows() == {}


def test_clicks_on_texts_not_offered_for_their_query_are_not_recorded(client, shop):
    """Any text with hits could be posted as a click, stuffing the click-through figures."""
    click = {"query": "kes", "text": "kestrel", "source": "catalog"}
    assert client.get("/api/suggest?q=kes").status_code == 200
    client.post("/api/suggest/clicks", json=click)
    forged = {"query": "kes", "text": "norvik", "source": "catalog"}
    client.post("/api/suggest/clicks", json=forged)
    rows = {row.query: row.clicks for row in db.session.scalars(select(SearchQuery))}
    assert rows == {"kestrel": 1}


def test_clicks_on_texts_that_find_nothing_are_not_recorded(client, shop):
    click = {"text": "bokonon", "source": "ai"}
    assert client.post("/api/suggest/clicks", json=click).status_code == 204
    assert rows() == {}


# -- the cookbook's /product-search-gpt --------------------------------------------------


def test_the_book_page_has_a_search_box_for_the_widget(client, shop):
    html = client.get("/product-search-gpt").get_data(as_text=True)
    assert 'role="search"' in html and "data-suggest" in html
    assert 'name="csrf-token"' in html


def test_the_book_post_needs_csrf_and_answers_a_list_of_searches(protected):
    client = protected.test_client()
    assert client.post("/product-search-gpt", data={"query": "kestrel"}).status_code == 400
    token = page_token(client)
    response = client.post("/product-search-gpt", data={"query": "kestrel", "csrf_token": token})
    assert response.status_code == 200
    found = response.get_json()
    assert isinstance(found, list) and "kestrel" in found
    assert all(isinstance(text, str) for text in found)
    assert rows() == {}  # the cookbook's client posts on each keystroke: nothing recorded
    jobs = [job for job in db.session.scalars(select(Job)) if "expansion" in job.kind]
    assert jobs == []
    too_long = client.post("/product-search-gpt", data={"query": "k" * 101, "csrf_token": token})
    assert too_long.status_code == 400 and "query" in too_long.get_json()["error"]["fields"]


# -- limits ----------------------------------------------------------------------------


def test_suggestions_are_rate_limited_per_client(protected):
    client = protected.test_client()
    codes = [client.get("/api/suggest?q=kes").status_code for _ in range(7)]
    assert codes == [200] * 6 + [429]
    assert client.get("/api/suggest?q=kes").get_json()["error"]["code"] == 429


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "X-Requested-With": "fetch"}


def expansion_payloads() -> list[str]:
    return [str(job.payload) for job in db.session.scalars(select(Job)) if "expansion" in job.kind]


def test_queries_handed_to_the_model_have_a_stricter_budget(protected):
    client = protected.test_client()
    for q in ("earphones for running", "gift for dad", "earphones for running"):
        response = client.get(
            "/api/suggest", query_string={"q": q, "settled": 1}, headers=SAME_ORIGIN
        )
        assert response.status_code == 200
    jobs = expansion_payloads()
    assert len(jobs) == 1 and "earphones for running" in jobs[0]


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_settled_requests_from_other_sites_never_reach_the_model(protected, site):
    """An <img src=/api/suggest?q=...&settled=1> on another site answers, asks nothing."""
    client = protected.test_client()
    query = {"q": "earphones for running", "settled": 1}
    headers = {"Sec-Fetch-Site": site, "X-Requested-With": "fetch"}
    assert client.get("/api/suggest", query_string=query, headers=headers).status_code == 200
    assert expansion_payloads() == []
    assert client.get("/api/suggest", query_string=query, headers=SAME_ORIGIN).status_code == 200
    assert len(expansion_payloads()) == 1


def test_queries_handed_to_the_model_have_a_limit_across_all_clients(protected):
    client = protected.test_client()
    for at, q in enumerate(("earphones for running", "gift for dad", "tent for two")):
        client.get(
            "/api/suggest",
            query_string={"q": q, "settled": 1},
            headers=SAME_ORIGIN,
            environ_base={"REMOTE_ADDR": f"192.0.2.{at}"},
        )
    assert len(expansion_payloads()) == 2


# -- the admin page --------------------------------------------------------------------


def test_the_admin_page_is_for_admins_only(client, shop):
    response = client.get("/admin/suggestions")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.post("/admin/suggestions/blocked", data={"term": "x"}).status_code == 302
    user = User(email="shopper@example.com", is_admin=False)
    user.set_password("a long enough password")
    db.session.add(user)
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": "a long enough password"})
    assert client.get("/admin/suggestions").status_code == 403
    assert client.post("/admin/suggestions/blocked", data={"term": "x"}).status_code == 403
    assert db.session.scalars(select(BlockedTerm)).all() == []


def test_admins_see_searches_and_manage_the_blocklist(admin_client, shop):
    for q in ("kestrel", "kestrel", "nothing like it"):
        admin_client.get("/search", query_string={"q": q})
    assert flush_searches()
    click = {"query": "kes", "text": "kestrel", "source": "catalog"}
    assert admin_client.post("/api/suggest/clicks", json=click).status_code == 204
    html = admin_client.get("/admin/suggestions").get_data(as_text=True)
    assert "Suggestions" in html and 'href="/admin/suggestions"' in html  # in the admin nav
    top = html[html.index('id="top-searches"') : html.index('id="no-results"')]
    assert "kestrel" in top and "50%" in top  # 1 click / 2 submissions
    no_results = html[html.index('id="no-results"') : html.index('id="most-clicked"')]
    assert "nothing like it" in no_results and "kestrel" not in no_results

    assert admin_client.get("/api/suggest?q=solvane").get_json()["suggestions"]
    added = admin_client.post("/admin/suggestions/blocked", data={"term": " Solvane "})
    assert added.status_code == 302
    assert admin_client.get("/api/suggest?q=solvane").get_json()["suggestions"] == []
    again = admin_client.post("/admin/suggestions/blocked", data={"term": "SOLVANE"})
    assert again.status_code == 400 and "already blocked" in again.get_data(as_text=True)
    assert admin_client.post("/admin/suggestions/blocked", data={"term": ""}).status_code == 400

    term = db.session.scalar(select(BlockedTerm))
    assert term.term == "solvane"
    removed = admin_client.post(f"/admin/suggestions/blocked/{term.id}/delete")
    assert removed.status_code == 302
    assert admin_client.get("/api/suggest?q=solvane").get_json()["suggestions"]
    assert admin_client.post(f"/admin/suggestions/blocked/{term.id}/delete").status_code == 404


def test_admin_forms_need_the_csrf_token(protected):
    from shopai.auth.services import create_admin

    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    client = protected.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    assert client.post("/admin/suggestions/blocked", data={"term": "solvane"}).status_code == 400
    token = csrf_token_from(client.get("/admin/suggestions").get_data(as_text=True))
    ok = client.post("/admin/suggestions/blocked", data={"term": "solvane", "csrf_token": token})
    assert ok.status_code == 302
    term = db.session.scalar(select(BlockedTerm))
    assert client.post(f"/admin/suggestions/blocked/{term.id}/delete").status_code == 400
    removed = client.post(
        f"/admin/suggestions/blocked/{term.id}/delete", data={"csrf_token": token}
    )
    assert removed.status_code == 302
