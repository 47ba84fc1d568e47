"""`/api/chat`, `/chat-gpt` and the stored conversation, against the fake model server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shopai.ai_service import flush_usage
from shopai.assistant.models import ChatMessage, Conversation
from shopai.assistant.prompt import RECITED_RULES, SYSTEM_PROMPT
from shopai.catalog.models import Product
from shopai.db_types import utcnow
from shopai.extensions import db
from shopai.images.services import attach_image, store_image
from shopai.usage import budget
from shopai.usage.models import UsageRecord

from ..factories import image_bytes, make_category, make_product
from ..fakes.openai_server import FakeOpenAI
from .conftest import chat_settings, running

SSE = {"Accept": "text/event-stream"}


def product(name: str) -> Product:
    found = db.session.scalar(select(Product).where(Product.name == name))
    assert found is not None
    return found


def events(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs of an SSE body, read as it arrives."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            lines = dict(
                line.split(": ", 1) for line in frame.splitlines() if not line.startswith(":")
            )
            if "event" in lines:
                yield lines["event"], json.loads(lines["data"])


def ask(client: FlaskClient, message: str, **body) -> dict:
    response = client.post("/api/chat", json={"message": message, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stream(client: FlaskClient, message: str, **body) -> list[tuple[str, dict]]:
    response = client.post("/api/chat", json={"message": message, **body}, headers=SSE)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    return list(events(response.response))


# -- answers and grounding -----------------------------------------------------------


def test_a_json_answer_has_cards_from_the_database(shopper, fake_ai):
    k7 = product("Kestrel K7 Wireless Headphones")
    fake_ai.reply_chat(f"The [P{k7.id}] is a great pick.")
    reply = ask(shopper, "noise cancelling headphones")
    assert reply["message"] == f"The [{k7.name}](/product/{k7.slug}) is a great pick."
    assert [c["name"] for c in reply["products"]] == [k7.name]
    card = reply["products"][0]
    assert (card["price"], card["url"]) == ("$199.00", f"/product/{k7.slug}")
    assert reply["status"] == "complete" and reply["conversation_id"]


def test_a_card_shows_the_products_chosen_image_or_the_placeholder(shopper, fake_ai):
    k7, buds = product("Kestrel K7 Wireless Headphones"), product("Kestrel Buds Mini")
    image = attach_image(k7, store_image(image_bytes()))
    db.session.commit()
    fake_ai.reply_chat(f"The [P{k7.id}] or the [P{buds.id}].")
    cards = ask(shopper, "headphones")["products"]
    assert [c["name"] for c in cards] == [k7.name, buds.name]
    assert cards[0]["image_url"] == f"/media/{image.thumbnail_path}"
    assert cards[1]["image_url"].endswith("img/placeholder.svg")


def test_the_model_is_given_the_retrieved_products_as_data(shopper, fake_ai):
    fake_ai.reply_chat("Here you go.")
    ask(shopper, "something to listen to music on the train")
    sent = fake_ai.requests_to("/chat/completions")[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": SYSTEM_PROMPT}
    listed, question = sent[-1]["content"].split("\n\n")
    assert question == "Shopper: something to listen to music on the train"
    buds = product("Kestrel Buds Mini")
    assert listed.splitlines()[1:] == [
        f"[P{buds.id}] Kestrel Buds Mini — $59.00 — Headphones. "
        "Tiny true wireless earbuds for running and commuting."
    ]


def test_without_citations_the_best_matches_are_shown(shopper, fake_ai):
    fake_ai.reply_chat("These should work for you.")
    reply = ask(shopper, "laptop for college")
    assert reply["products"][0]["name"] == "Norvik Edu 11 Student Laptop"


def test_a_wrong_price_written_by_the_model_is_corrected(shopper, fake_ai):
    buds = product("Kestrel Buds Mini")
    fake_ai.reply_chat(f"The [P{buds.id}] costs only $19.99!")
    reply = ask(shopper, "earbuds for running")
    assert "$59.00" in reply["message"] and "19.99" not in reply["message"]


def test_an_invented_product_is_not_shown_as_one(shopper, fake_ai):
    fake_ai.reply_chat(
        "Buy the [P9999] or the Zentro Phantom X for $99 at [our store](https://x.test)."
    )
    reply = ask(shopper, "headphones")
    assert "P9999" not in reply["message"] and "$99" not in reply["message"]
    assert "https://x.test" not in reply["message"] and "href" not in reply["html"].replace(
        '<a href="/products/', ""
    )
    assert all(card["name"] != "Zentro Phantom X" for card in reply["products"])
    names = {p.name for p in db.session.scalars(select(Product))}
    assert {card["name"] for card in reply["products"]} <= names


def test_history_is_sent_to_the_model(shopper, fake_ai):
    fake_ai.reply_chat("The Norvik Edu 11 is made for school.")
    first = ask(shopper, "a laptop for college")
    fake_ai.reply_chat("It weighs little.")
    ask(shopper, "is it light?", conversation_id=first["conversation_id"])
    sent = fake_ai.requests_to("/chat/completions")[-1].body["messages"]
    roles = [m["role"] for m in sent]
    assert roles == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "a laptop for college"
    assert sent[2]["content"] == "The Norvik Edu 11 is made for school."


def test_a_follow_up_keeps_the_earlier_subject(shopper, fake_ai):
    fake_ai.reply_chat("ok")
    first = ask(shopper, "a laptop for college")
    fake_ai.reply_chat("ok")
    reply = ask(shopper, "any under $500?", conversation_id=first["conversation_id"])
    assert [c["name"] for c in reply["products"]] == ["Norvik Edu 11 Student Laptop"]


def test_only_a_new_conversation_rewrites_the_session_cookie(shopper, fake_ai):
    fake_ai.reply_chat("ok")
    first = shopper.post("/api/chat", json={"message": "headphones"})
    assert "Set-Cookie" in first.headers
    conversation_id = first.get_json()["conversation_id"]
    fake_ai.reply_chat("ok")
    body = {"message": "cheaper ones?", "conversation_id": conversation_id}
    again = shopper.post("/api/chat", json=body)
    assert again.status_code == 200 and "Set-Cookie" not in again.headers
    assert shopper.get("/api/chat").get_json()["conversation_id"] == conversation_id


def test_every_call_lands_in_the_usage_ledger(shopper, shop, fake_ai):
    fake_ai.reply_chat("ok", prompt_tokens=321, completion_tokens=12)
    ask(shopper, "headphones")
    assert flush_usage()
    record = db.session.scalar(select(UsageRecord).where(UsageRecord.feature == "chat"))
    assert record is not None and (record.prompt_tokens, record.completion_tokens) == (321, 12)
    conversation = db.session.scalar(select(Conversation))
    assert conversation is not None and conversation.tokens_used == 333


# -- streaming -------------------------------------------------------------------------


def test_tokens_stream_then_products_then_done(shopper, fake_ai):
    k7 = product("Kestrel K7 Wireless Headphones")
    fake_ai.reply_stream(["The ", f"[P{k7.id}]", " is ", "great ", "for ", "$150", "."])
    received = stream(shopper, "noise cancelling headphones")
    kinds = [kind for kind, _ in received]
    assert kinds[-2:] == ["products", "done"] and kinds.count("token") >= 3
    text = "".join(data["text"] for kind, data in received if kind == "token")
    assert text == f"The [{k7.name}](/product/{k7.slug}) is great for $199.00."
    done = received[-1][1]
    assert done["status"] == "complete" and f'href="/product/{k7.slug}"' in done["html"]
    saved = db.session.get(ChatMessage, done["message_id"])
    assert saved is not None and saved.content == text and saved.product_ids == [k7.id]


def test_a_stream_cut_midway_keeps_the_partial_answer(shopper, fake_ai):
    fake_ai.reply_stream(["Good ", "options ", "are ", "coming"], cut_after=2)
    received = stream(shopper, "headphones")
    kinds = [kind for kind, _ in received]
    assert "error" in kinds and kinds[-2:] == ["products", "done"]
    done = received[-1][1]
    assert done["status"] == "failed"
    assert db.session.get(ChatMessage, done["message_id"]).content == "Good options "


def test_closing_the_stream_stops_the_model_and_saves_the_partial_answer(shopper, fake_ai):
    fake_ai.reply_stream([f"word{i} " for i in range(200)], chunk_delay=0.02)
    response = shopper.post("/api/chat", json={"message": "headphones"}, headers=SSE)
    chunks = iter(response.response)
    seen = ""
    for kind, data in events(chunks):
        if kind == "token":
            seen += data["text"]
        if seen.count("word") >= 3:
            break
    response.close()  # what the server does when the shopper's browser hangs up
    assert fake_ai.client_gone.wait(5), "the model server never saw the request cancelled"
    reply = db.session.scalar(select(ChatMessage).where(ChatMessage.role == "assistant"))
    assert reply is not None and reply.status == "stopped"
    assert reply.content.startswith(seen) and "word199" not in reply.content
    assert len(fake_ai.requests_to("/chat/completions")) == 1


def test_the_stop_endpoint_stops_an_answer_being_written(shopper, fake_ai):
    fake_ai.reply_stream([f"word{i} " for i in range(200)], chunk_delay=0.02)
    received: list[tuple[str, dict]] = []
    started = threading.Event()

    def read() -> None:
        response = shopper.post("/api/chat", json={"message": "headphones"}, headers=SSE)
        for item in events(response.response):
            received.append(item)
            started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(5)
    conversation = db.session.scalar(select(Conversation))
    assert conversation is not None
    assert shopper.post(f"/api/chat/{conversation.public_id}/stop").status_code == 200
    reader.join(10)
    assert received[-1][0] == "done" and received[-1][1]["status"] == "stopped"
    assert fake_ai.client_gone.wait(5)


# -- fallback ------------------------------------------------------------------------------


def test_backend_down_gives_a_search_only_answer(shopper, fake_ai):
    fake_ai.reply_error(500)
    reply = ask(shopper, "headphones under $100")
    assert reply["status"] == "limited" and "search-only" in reply["notice"]
    buds = product("Kestrel Buds Mini")
    assert f"- [Kestrel Buds Mini](/product/{buds.slug}) — $59.00" in reply["message"]
    assert f'<a href="/product/{buds.slug}"' in reply["html"]
    assert [c["name"] for c in reply["products"]] == ["Kestrel Buds Mini"]


def test_a_model_that_ends_without_a_word_gives_the_search_answer(shopper, fake_ai):
    """The small embedded model sometimes begins by echoing its prompt, where it is
    stopped: a blank answer becomes the search's own, not an empty bubble."""
    fake_ai.reply_stream(["  "])
    reply = ask(shopper, "headphones under $100")
    assert reply["status"] == "complete" and reply.get("notice") is None
    buds = product("Kestrel Buds Mini")
    assert f"- [Kestrel Buds Mini](/product/{buds.slug}) — $59.00" in reply["message"]


def test_the_daily_budget_spent_gives_a_search_only_answer(shopper, fake_ai):
    db.session.add(UsageRecord(feature="chat", backend="openai", model="m", prompt_tokens=10**9))
    db.session.commit()
    reply = ask(shopper, "laptop")
    assert reply["status"] == "limited" and "budget" in reply["notice"]
    assert fake_ai.requests_to("/chat/completions") == []


def test_the_days_spending_is_read_again_once_the_last_read_is_too_old(shop, monkeypatch):
    def spend(tokens: int) -> None:
        db.session.add(
            UsageRecord(feature="chat", backend="openai", model="m", prompt_tokens=tokens)
        )
        db.session.commit()

    spend(100)
    assert budget.recently_spent_today("chat", max_age=60) == 100
    spend(50)
    assert budget.recently_spent_today("chat", max_age=60) == 100  # a read trusted for 60 s
    assert budget.recently_spent_today("suggest", max_age=60) == 0  # each feature its own
    later = time.monotonic() + 61
    monkeypatch.setattr(budget, "clock", SimpleNamespace(monotonic=lambda: later))
    assert budget.recently_spent_today("chat", max_age=60) == 150


def test_a_search_only_answer_streams_too(shopper, fake_ai):
    fake_ai.reply_error(503)
    received = stream(shopper, "speaker")
    assert [kind for kind, _ in received] == ["token", "products", "done"]
    assert received[-1][1]["status"] == "limited"


# -- the conversation ----------------------------------------------------------------------


def test_the_conversation_survives_a_refresh(shopper, fake_ai):
    fake_ai.reply_chat("Try the speaker.")
    reply = ask(shopper, "a speaker")
    loaded = shopper.get("/api/chat").get_json()
    assert loaded["conversation_id"] == reply["conversation_id"]
    assert [(m["role"], m["text"]) for m in loaded["messages"]] == [
        ("user", "a speaker"),
        ("assistant", "Try the speaker."),
    ]
    assert loaded["messages"][0]["html"] is None
    assert loaded["messages"][1]["products"]


def test_another_shopper_cannot_see_or_continue_it(shop, shopper, fake_ai):
    fake_ai.reply_chat("ok")
    mine = ask(shopper, "a speaker")
    stranger = shop.test_client()
    assert stranger.get("/api/chat").get_json() == {"conversation_id": None, "messages": []}
    response = stranger.post(
        "/api/chat", json={"message": "hi", "conversation_id": mine["conversation_id"]}
    )
    assert response.status_code == 404
    answer_id = db.session.scalar(select(ChatMessage.id).where(ChatMessage.role == "assistant"))
    rated = stranger.post(f"/api/chat/messages/{answer_id}/rating", json={"rating": 1})
    assert rated.status_code == 404


def test_new_conversation_starts_empty(shopper, fake_ai):
    fake_ai.reply_chat("ok")
    ask(shopper, "a speaker")
    assert shopper.post("/api/chat/new").get_json() == {"conversation_id": None}
    assert shopper.get("/api/chat").get_json()["messages"] == []


def test_ratings_reach_the_admin_list(shopper, fake_ai, admin_client_for):
    fake_ai.reply_chat("The Boomcan Go is waterproof.")
    reply = ask(shopper, "a speaker for the beach")
    answer_id = reply["message_id"]
    rated = shopper.post(f"/api/chat/messages/{answer_id}/rating", json={"rating": -1})
    assert rated.get_json() == {"id": answer_id, "rating": -1}
    page = admin_client_for.get("/admin/assistant?rating=-1").get_data(as_text=True)
    assert "a speaker for the beach" in page and "The Boomcan Go is waterproof." in page
    assert "Not helpful" in page
    assert "No rated answers yet." in admin_client_for.get("/admin/assistant?rating=1").get_data(
        as_text=True
    )


def test_the_rated_list_is_for_admins_only(shopper):
    assert shopper.get("/admin/assistant").status_code in (302, 401, 403)


def test_old_conversations_expire_through_a_periodic_job(shopper, fake_ai):
    from shopai.jobs import execute_job
    from shopai.jobs.models import Job
    from shopai.jobs.services import schedule_periodic

    fake_ai.reply_chat("ok")
    ask(shopper, "a speaker")
    conversation = db.session.scalar(select(Conversation))
    assert conversation is not None
    conversation.updated_at = utcnow() - timedelta(days=31)
    db.session.commit()
    assert schedule_periodic() >= 1
    job = db.session.scalar(select(Job).where(Job.kind == "assistant.expire"))
    assert job is not None
    execute_job(job.id)
    assert db.session.scalar(select(Conversation)) is None
    assert db.session.scalar(select(ChatMessage)) is None
    assert schedule_periodic() == 0  # once per period


# -- the cookbook's endpoint ------------------------------------------------------------------


def test_chat_gpt_answers_the_books_form_post(shopper, fake_ai):
    fake_ai.reply_chat("Hello! How can I help?")
    response = shopper.post("/chat-gpt", data={"msg": "hi"})
    assert response.status_code == 200
    assert response.get_json() == {
        "message": "<p>Hello! How can I help?</p>\n",
        "text": "Hello! How can I help?",
    }
    assert shopper.get("/chat-gpt").status_code == 200


# -- limits and refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": ""}, "Type a message first."),
        ({"message": "   "}, "Type a message first."),
        ({"message": 42}, "The message must be text."),
        ({"message": "x" * 1001}, "Messages are limited to 1000 characters."),
        ({"message": "hi", "conversation_id": 7}, "conversation_id must be a string."),
        ({"message": "hi", "conversation_id": "nope"}, "That conversation is gone."),
    ],
)
def test_bad_messages_get_a_clear_error(shopper, fake_ai, body, message):
    response = shopper.post("/api/chat", json=body)
    assert 400 <= response.status_code < 500
    assert response.get_json()["error"]["message"].startswith(message)
    assert fake_ai.requests_to("/chat/completions") == []


def test_a_body_that_is_not_json_is_refused(shopper):
    response = shopper.post("/api/chat", data="message=hi")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]["message"]


def test_a_conversation_over_its_token_budget_is_refused(shopper, fake_ai):
    fake_ai.reply_chat("ok")
    first = ask(shopper, "a speaker")
    conversation = db.session.scalar(select(Conversation))
    assert conversation is not None
    conversation.tokens_used = 10**6
    db.session.commit()
    response = shopper.post(
        "/api/chat", json={"message": "more", "conversation_id": first["conversation_id"]}
    )
    assert response.status_code == 429
    assert "Start a new conversation" in response.get_json()["error"]["message"]


def test_one_answer_at_a_time_per_shopper(shopper, fake_ai):
    fake_ai.reply_stream([f"w{i} " for i in range(100)], chunk_delay=0.02)
    first = shopper.post("/api/chat", json={"message": "headphones"}, headers=SSE)
    next(iter(first.response))
    second = shopper.post("/api/chat", json={"message": "laptops"})
    assert second.status_code == 429
    assert "still answering" in second.get_json()["error"]["message"]
    first.close()


@pytest.fixture
def limited_shop(app_config: dict, fake_ai: FakeOpenAI) -> Iterator[Flask]:
    config = {
        **app_config,
        "SHOPAI_AI": chat_settings(fake_ai),
        "RATELIMIT_ENABLED": True,
        "SHOPAI_CHAT_SESSION_RATE_LIMIT": "2 per minute",
        "SHOPAI_CHAT_MAX_STREAMS": 1,
    }
    for app in running(config):
        make_product("Boomcan Go Bluetooth Speaker", "79.00", make_category("Speakers"))
        yield app


def test_the_session_rate_limit_refuses_with_a_clear_message(limited_shop, fake_ai):
    client = limited_shop.test_client()
    for _ in range(2):
        fake_ai.reply_chat("ok")
        assert client.post("/api/chat", json={"message": "speaker"}).status_code == 200
    refused = client.post("/api/chat", json={"message": "speaker"})
    assert refused.status_code == 429
    assert "too fast" in refused.get_json()["error"]["message"]
    other = limited_shop.test_client()  # another session (same address) still may ask
    fake_ai.reply_chat("ok")
    assert other.post("/api/chat", json={"message": "speaker"}).status_code == 200


def test_open_streams_are_capped_per_process(limited_shop, fake_ai):
    fake_ai.reply_stream([f"w{i} " for i in range(100)], chunk_delay=0.02)
    first = limited_shop.test_client()
    streaming = first.post("/api/chat", json={"message": "speaker"}, headers=SSE)
    next(iter(streaming.response))
    busy = limited_shop.test_client().post("/api/chat", json={"message": "speaker"})
    assert busy.status_code == 503 and "busy" in busy.get_json()["error"]["message"]
    streaming.close()
    fake_ai.reply_chat("ok")
    again = limited_shop.test_client().post("/api/chat", json={"message": "speaker"})
    assert again.status_code == 200


@pytest.fixture
def csrf_shop(shop_config: dict) -> Iterator[Flask]:
    yield from running({**shop_config, "WTF_CSRF_ENABLED": True})


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/api/chat", {"json": {"message": "hi"}}),
        ("/chat-gpt", {"data": {"msg": "hi"}}),
        ("/api/chat/new", {}),
        ("/api/chat/messages/1/rating", {"json": {"rating": 1}}),
    ],
)
def test_every_state_change_needs_the_csrf_token(csrf_shop, fake_ai, path, kwargs):
    client = csrf_shop.test_client()
    assert client.post(path, **kwargs).status_code == 400
    token = client.get("/csrf-token").get_json()["csrf_token"]
    fake_ai.reply_chat("ok")
    ok = client.post(path, headers={"X-CSRFToken": token}, **kwargs)
    assert ok.status_code in (200, 404)  # 404: no such answer to rate, but past CSRF
    assert fake_ai.requests_to("/chat/completions") == [] or path in ("/api/chat", "/chat-gpt")


# -- review regressions -------------------------------------------------------------------


def test_a_failure_before_the_model_is_saved_and_frees_the_shopper(shopper, fake_ai, monkeypatch):
    from shopai.assistant import services

    def broken(*args, **kwargs):
        raise RuntimeError("search index unavailable")

    monkeypatch.setattr(services, "retrieve", broken)
    reply = ask(shopper, "headphones")
    assert reply["status"] == "failed" and "went wrong" in reply["notice"]
    monkeypatch.undo()
    fake_ai.reply_chat("ok")
    again = ask(shopper, "headphones", conversation_id=reply["conversation_id"])
    assert again["status"] == "complete"  # not locked out by a dead answer


def test_a_conversation_is_answered_one_message_at_a_time(shop):
    from shopai.assistant.services import ChatRefused, begin_turn

    first = begin_turn("owner-hash", None, "headphones")
    with pytest.raises(ChatRefused) as refused:
        begin_turn("owner-hash", first.public_id, "laptops")
    assert refused.value.status == 429
    with pytest.raises(ChatRefused):
        begin_turn("owner-hash", None, "laptops")  # nor in another conversation


def test_a_model_silent_past_its_timeout_gives_a_search_only_answer(app_config, fake_ai):
    config = {**app_config, "SHOPAI_AI": chat_settings(fake_ai, SHOPAI_CHAT_TIMEOUT="1")}
    for shop in running(config):
        make_product("Boomcan Go Bluetooth Speaker", "79.00", make_category("Speakers"))
        fake_ai.reply_stream(["", "too late"], chunk_delay=3)
        reply = ask(shop.test_client(), "speaker")
        assert reply["status"] == "limited" and "search-only" in reply["notice"]
        assert "Boomcan Go Bluetooth Speaker" in reply["message"]


def test_the_session_limit_is_shared_by_the_api_and_the_cookbook_endpoint(limited_shop, fake_ai):
    client = limited_shop.test_client()
    fake_ai.reply_chat("ok")
    assert client.post("/api/chat", json={"message": "speaker"}).status_code == 200
    fake_ai.reply_chat("ok")
    assert client.post("/chat-gpt", data={"msg": "speaker"}).status_code == 200
    assert client.post("/chat-gpt", data={"msg": "speaker"}).status_code == 429
    assert client.post("/api/chat", json={"message": "speaker"}).status_code == 429


def test_the_per_address_limit_counts_every_session(app_config, fake_ai):
    config = {
        **app_config,
        "SHOPAI_AI": chat_settings(fake_ai),
        "RATELIMIT_ENABLED": True,
        "SHOPAI_CHAT_RATE_LIMIT": "2 per minute",
    }
    for shop in running(config):
        for _ in range(2):
            fake_ai.reply_chat("ok")
            assert shop.test_client().post("/api/chat", json={"message": "x"}).status_code == 200
        refused = shop.test_client().post("/api/chat", json={"message": "x"})
        assert refused.status_code == 429 and "too fast" in refused.get_json()["error"]["message"]


def test_signing_out_forgets_the_conversation(shop, fake_ai, admin_client_for):
    fake_ai.reply_chat("ok")
    ask(admin_client_for, "my order for laptops")
    assert admin_client_for.get("/api/chat").get_json()["messages"]
    admin_client_for.post("/logout")
    assert admin_client_for.get("/api/chat").get_json()["messages"] == []


def test_the_model_is_asked_not_to_loop_or_run_on(shopper, fake_ai):
    fake_ai.reply_chat("ok")
    ask(shopper, "a speaker")
    body = fake_ai.requests_to("/chat/completions")[-1].body
    assert body["frequency_penalty"] > 0 and "Shopper:" in body["stop"]
    assert body["stream"] is True and body["max_completion_tokens"] == 300
    assert len(body["stop"]) <= 4  # what OpenAI's API accepts


def test_the_embedded_model_stops_where_it_would_recite_its_rules(shop, shopper, fake_ai):
    settings = shop.config["SHOPAI_AI"]
    chat = replace(settings.feature("chat"), backend="local")
    shop.config["SHOPAI_AI"] = replace(settings, features={**settings.features, "chat": chat})
    try:
        fake_ai.reply_chat("ok")  # the client was built for the fake: only the setting changed
        ask(shopper, "a speaker")
    finally:
        shop.config["SHOPAI_AI"] = settings
    stop = fake_ai.requests_to("/chat/completions")[-1].body["stop"]
    assert "Shopper:" in stop and set(RECITED_RULES) <= set(stop)
