"""The assistant's page, its JSON and Server-Sent-Events API, the cookbook's `/chat-gpt`,
and the admin list of rated answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from flask import (
    current_app,
    jsonify,
    render_template,
    request,
    session,
    stream_with_context,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..auth.decorators import admin_required
from ..errors import json_error
from ..extensions import db, limiter
from ..web import page_arg
from . import bp
from .models import ChatMessage, MessageStatus
from .render import render_reply
from .services import (
    ChatRefused,
    Done,
    Error,
    Products,
    Token,
    Turn,
    Waiting,
    answer,
    begin_turn,
    cards_for_each,
    find_conversation,
    new_owner_token,
    owner_hash,
    rate,
    request_stop,
    run_turn,
)
from .warmup import warm_up_in_background

OWNER_KEY = "chat_owner"
CURRENT_KEY = "chat_conversation"
RATE_LIMITED = "You are sending messages too fast. Wait a minute, then try again."
BUSY = "The assistant is busy with other shoppers. Try again in a moment."
RATED_PER_PAGE = 30

SLOTS_KEY = "shopai.chat_slots"


def _owner() -> str:
    """This browser session's owner hash; the session gets its token on first use."""
    token = session.get(OWNER_KEY)
    if not isinstance(token, str):
        token = session[OWNER_KEY] = new_owner_token()
    return owner_hash(token)


def _session_key() -> str:
    """Rate limits per browser session (besides per client address)."""
    return "chat-session:" + _owner()


def _chat_limit() -> str:
    return current_app.config["SHOPAI_CHAT_RATE_LIMIT"]


def _session_limit() -> str:
    return current_app.config["SHOPAI_CHAT_SESSION_RATE_LIMIT"]


@bp.record_once
def _make_answer_slots(state: BlueprintSetupState) -> None:
    """Answers written at once in this process, at most SHOPAI_CHAT_MAX_STREAMS: each
    holds a server thread for as long as the model writes, and the shop must keep
    threads for everyone else."""
    limit = state.app.config["SHOPAI_CHAT_MAX_STREAMS"]
    state.app.extensions[SLOTS_KEY] = threading.BoundedSemaphore(limit)


@bp.before_app_request
def _warm_up_model() -> None:
    """The embedded model loads in the background from the app's first request on."""
    warm_up_in_background(current_app._get_current_object())  # type: ignore[attr-defined]


def _answer_slots() -> threading.BoundedSemaphore:
    return current_app.extensions[SLOTS_KEY]


def _remember_conversation(turn: Turn) -> None:
    """The session's current conversation is the turn's. Only a change is written: any
    write re-signs the session cookie, and most messages follow up on the same one."""
    if session.get(CURRENT_KEY) != turn.public_id:
        session[CURRENT_KEY] = turn.public_id


def _who(turn: Turn) -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"chat:{turn.public_id[:16]}"


def _refused(refusal: ChatRefused) -> Response:
    return json_error(refusal.status, "Refused", refusal.message)


def message_dicts(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """A conversation's messages as JSON, their answers' cards read in one query."""
    cards = cards_for_each([m.product_ids if m.role == "assistant" else [] for m in messages])
    return [
        {
            "id": message.id,
            "role": message.role,
            "text": message.content,
            "html": str(render_reply(message.content)) if message.role == "assistant" else None,
            "status": message.status,
            "products": [asdict(c) for c in message_cards],
            "rating": message.rating,
        }
        for message, message_cards in zip(messages, cards, strict=True)
    ]


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(turn: Turn, who: str) -> Iterator[str]:
    turn_events = run_turn(turn, who)
    try:
        for event in turn_events:
            if isinstance(event, Token):
                yield _sse("token", {"text": event.text})
            elif isinstance(event, Waiting):
                yield ": held\n\n"
            elif isinstance(event, Products):
                yield _sse("products", {"products": [asdict(c) for c in event.cards]})
            elif isinstance(event, Error):
                yield _sse("error", {"message": event.message})
            elif isinstance(event, Done):
                yield _sse("done", _done_dict(event))
    finally:
        turn_events.close()  # saves the partial answer and cancels the model's stream


def _done_dict(done: Done) -> dict[str, Any]:
    return {
        "conversation_id": done.conversation_id,
        "message_id": done.message_id,
        "status": done.status,
        "html": done.html,
        "notice": done.notice,
    }


@bp.get("/assistant")
def page() -> str:
    return render_template("assistant/page.html")


@bp.get("/api/chat")
def current_conversation() -> Response:
    conversation = find_conversation(_owner(), session.get(CURRENT_KEY))
    response = jsonify(
        conversation_id=conversation.public_id if conversation else None,
        messages=message_dicts(conversation.messages) if conversation else [],
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# One budget for every way of sending a message (the API and the cookbook's endpoint).
per_address = limiter.shared_limit(
    _chat_limit, scope="chat", methods=["POST"], error_message=RATE_LIMITED
)
per_session = limiter.shared_limit(
    _session_limit,
    scope="chat-session",
    key_func=_session_key,
    methods=["POST"],
    error_message=RATE_LIMITED,
)


@bp.post("/api/chat")
@per_address
@per_session
def chat() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "Bad Request", 'Send JSON: {"message": "..."}.')
    conversation_id = body.get("conversation_id")
    if conversation_id is not None and not isinstance(conversation_id, str):
        return json_error(400, "Bad Request", "conversation_id must be a string.")
    slots = _answer_slots()
    if not slots.acquire(blocking=False):
        return json_error(503, "Busy", BUSY)
    streaming = False
    try:
        turn = begin_turn(_owner(), conversation_id, body.get("message"))
        _remember_conversation(turn)
        who = _who(turn)
        if request.accept_mimetypes.best == "text/event-stream":
            response = Response(
                stream_with_context(_events(turn, who)), mimetype="text/event-stream"
            )
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
            # The server closes every response it started, read to the end or not.
            response.call_on_close(slots.release)
            streaming = True
            return response
        done = answer(turn, who)
    except ChatRefused as refusal:
        return _refused(refusal)
    finally:
        if not streaming:
            slots.release()
    return jsonify(
        conversation_id=done.conversation_id,
        message=done.text,
        html=done.html,
        message_id=done.message_id,
        status=done.status,
        notice=done.notice,
        products=[asdict(c) for c in done.cards],
    )


@bp.post("/api/chat/new")
def new_conversation() -> Response:
    session.pop(CURRENT_KEY, None)
    return jsonify(conversation_id=None)


@bp.post("/api/chat/<conversation_id>/stop")
def stop(conversation_id: str) -> Response:
    if not request_stop(_owner(), conversation_id):
        return json_error(404, "Not Found", "No answer is being written here.")
    return jsonify(stopping=True)


@bp.post("/api/chat/messages/<id:message_id>/rating")
def rate_answer(message_id: int) -> Response:
    body = request.get_json(silent=True)
    rating = body.get("rating") if isinstance(body, dict) else None
    if rating not in (1, -1, 0) or isinstance(rating, bool):
        return json_error(400, "Bad Request", "rating must be 1, -1 or 0.")
    message = rate(_owner(), message_id, rating)
    if message is None:
        return json_error(404, "Not Found", "No such answer in your conversations.")
    return jsonify(id=message.id, rating=message.rating)


@bp.route("/chat-gpt", methods=["GET", "POST"])
@per_address
@per_session
def chat_gpt() -> Response | str:
    """The cookbook's endpoint: POST form field `msg`, reply `{"message": ...}`; the
    answer is grounded, checked and stored like any other. The book's page appends
    `message` to the page as HTML, so it is the answer's sanitized HTML (the markdown
    is in `text`)."""
    if request.method == "GET":
        return render_template("assistant/page.html")
    slots = _answer_slots()
    if not slots.acquire(blocking=False):
        return json_error(503, "Busy", BUSY)
    try:
        current = find_conversation(_owner(), session.get(CURRENT_KEY))
        turn = begin_turn(_owner(), current.public_id if current else None, request.form.get("msg"))
        _remember_conversation(turn)
        done = answer(turn, _who(turn))
    except ChatRefused as refusal:
        return _refused(refusal)
    finally:
        slots.release()
    return jsonify(message=done.html, text=done.text)


@bp.get("/admin/assistant")
@admin_required
def rated_answers() -> str:
    """Answers shoppers rated, newest first, with the question each one answered."""
    wanted = request.args.get("rating", "")
    query = select(ChatMessage).where(ChatMessage.rating.is_not(None))
    if wanted in ("1", "-1"):
        query = query.where(ChatMessage.rating == int(wanted))
    pagination = db.paginate(
        query.order_by(ChatMessage.rated_at.desc(), ChatMessage.id.desc()),
        page=page_arg(),
        per_page=RATED_PER_PAGE,
        error_out=False,
    )
    questions = {m.id: _question_before(m) for m in pagination.items}
    return render_template(
        "assistant/admin.html",
        pagination=pagination,
        questions=questions,
        rating=wanted,
        statuses=MessageStatus,
    )


def _question_before(answer_message: ChatMessage) -> str:
    return (
        db.session.scalar(
            select(ChatMessage.content)
            .where(
                ChatMessage.conversation_id == answer_message.conversation_id,
                ChatMessage.role == "user",
                ChatMessage.id < answer_message.id,
            )
            .order_by(ChatMessage.id.desc())
            .limit(1)
        )
        or ""
    )
