"""One turn of the shop assistant, from the shopper's message to a saved, checked answer.

A turn is two steps so the web layer can refuse early and stream late:

- `begin_turn` validates the message, applies the per-conversation budget and the
  one-answer-at-a-time rule, and saves the question with an empty answer marked
  streaming (so a refresh mid-answer shows it);
- `run_turn` retrieves products, asks the model, passes its text through the guard as
  it streams, and saves the answer however the turn ends: complete, stopped by the
  shopper (the partial answer), cut off by the backend, or search-only when the
  backend is down, slow or over its daily budget.

No database transaction stays open while the model writes.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import bindparam, delete, insert, or_, select, update

from ..ai.client import ChatStream, estimate_tokens
from ..ai.errors import AIError
from ..ai.types import Message, TextDelta
from ..ai_service import ai_client
from ..catalog.models import Product
from ..db_types import utcnow
from ..extensions import db
from ..search.cards import ProductCard, cards_in_order
from ..templating import image_url, money
from ..usage.budget import recently_spent_today
from .guard import ProductFacts, ReplyGuard, amounts_in
from .models import TITLE_CHARS, ChatMessage, Conversation, MessageStatus
from .prompt import EMBEDDED, HOSTED, RECITED_RULES, PromptBudget, build_messages
from .render import render_reply
from .retrieval import Retrieval, retrieve

log = logging.getLogger(__name__)

CARDS = 3  # cards shown when the model cites none of the products it was given
STREAM_GRACE = timedelta(seconds=30)  # past the chat timeout, an answer being written is dead
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


class ChatRefused(Exception):
    """A message the assistant will not answer; `message` says why, for the shopper."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- events of a turn, in order: Token* Error? Products Done ---------------------------


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Waiting:
    """The model wrote something the guard holds back for now. The web layer turns it
    into an SSE comment: writing something is how a server notices the shopper left."""


@dataclass(frozen=True)
class Card:
    id: int
    name: str
    price: str
    url: str
    image_url: str
    category: str


@dataclass(frozen=True)
class Products:
    cards: list[Card]


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Done:
    conversation_id: str
    message_id: int
    status: MessageStatus
    text: str
    html: str
    notice: str | None
    cards: list[Card]


Event = Token | Waiting | Products | Error | Done


# -- ownership -----------------------------------------------------------------------


def new_owner_token() -> str:
    """The random token a browser session holds; only its hash is stored."""
    return secrets.token_urlsafe(24)


def owner_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_conversation(owner: str, public_id: str | None) -> Conversation | None:
    if not public_id:
        return None
    return db.session.scalar(
        select(Conversation).where(Conversation.public_id == public_id, Conversation.owner == owner)
    )


def card(product: ProductCard) -> Card:
    return Card(
        id=product.id,
        name=product.name,
        price=money(product.price),
        url=url_for("catalog.product", key=product.slug),
        image_url=image_url(product.image, thumbnail=True),
        category=product.category.name,
    )


def cards_for(ids: list[int]) -> list[Card]:
    """Cards for product ids, in order, from the database; deleted products vanish."""
    return cards_for_each([ids])[0]


def cards_for_each(id_lists: list[list[int]]) -> list[list[Card]]:
    """`cards_for` of several lists (a conversation's answers) in one query, read as
    rows (`search.cards`): loading products, their categories and images as objects
    cost each answer more than the query itself."""
    wanted = list(dict.fromkeys(pid for ids in id_lists for pid in ids))
    found = {product.id: card(product) for product in cards_in_order(wanted)}
    return [[found[pid] for pid in ids if pid in found] for ids in id_lists]


# -- starting a turn -------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    conversation_id: int
    public_id: str
    reply_id: int
    question: str
    history: list[tuple[str, str]]  # earlier (role, text), oldest first
    earlier_question: str | None


def clean_message(text: object) -> str:
    if not isinstance(text, str):
        raise ChatRefused(400, "The message must be text.")
    text = text.translate(_CONTROL).strip()
    if not text:
        raise ChatRefused(400, "Type a message first.")
    limit = current_app.config["SHOPAI_CHAT_MAX_MESSAGE_CHARS"]
    if len(text) > limit:
        raise ChatRefused(400, f"Messages are limited to {limit} characters.")
    return text


def _answer_deadline() -> timedelta:
    """How long an answer may take: after that, a claim is stale (its process died)."""
    return timedelta(seconds=current_app.config["SHOPAI_AI"].feature("chat").timeout) + STREAM_GRACE


# The statements a turn runs before the model's first word and after its last, built
# once and run on the session's connection (in its transaction) as plain SQL: built per
# call and run through the ORM, they cost a turn more than the database's own work
# (measured in process on the demo shop: begin_turn took 0.85 ms that way, 0.33 now).
_ANSWERING = (
    select(Conversation.id)
    .where(
        Conversation.owner == bindparam("owner"),
        Conversation.answering_until > bindparam("now"),
    )
    .limit(1)
)
_CLAIM = (
    update(Conversation)
    .where(
        Conversation.id == bindparam("conversation_id"),
        or_(
            Conversation.answering_until.is_(None),
            Conversation.answering_until <= bindparam("now"),
        ),
    )
    .values(answering_until=bindparam("until"), updated_at=bindparam("now"))
)
_START_CONVERSATION = insert(Conversation).returning(Conversation.id)
_ADD_MESSAGE = insert(ChatMessage).returning(ChatMessage.id)
_SAVE_ANSWER = (
    update(ChatMessage)
    .where(ChatMessage.id == bindparam("message_id"))
    .values(
        content=bindparam("content"),
        status=bindparam("status"),
        product_ids=bindparam("product_ids"),
        prompt_tokens=bindparam("prompt_tokens"),
        completion_tokens=bindparam("completion_tokens"),
    )
)
_END_ANSWERING = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(
        tokens_used=Conversation.tokens_used + bindparam("spent"),
        updated_at=bindparam("now"),
        answering_until=None,
    )
)


def _answering(owner: str) -> bool:
    """Whether this shopper has an answer being written in any conversation, any process."""
    found = db.session.connection().scalar(_ANSWERING, {"owner": owner, "now": utcnow()})
    return found is not None


def _claim(conversation_id: int) -> bool:
    """Mark the conversation as being answered, atomically: of two messages sent at
    once, one gets the answer and the other a refusal."""
    now = utcnow()
    claimed = db.session.connection().execute(
        _CLAIM,
        {"conversation_id": conversation_id, "now": now, "until": now + _answer_deadline()},
    )
    return claimed.rowcount == 1


def _start_conversation(owner: str, public_id: str, question: str) -> int:
    """A new conversation, already being answered; its id."""
    started = db.session.connection().execute(
        _START_CONVERSATION,
        {
            "public_id": public_id,
            "owner": owner,
            "title": question[:TITLE_CHARS],
            "answering_until": utcnow() + _answer_deadline(),
        },
    )
    return started.scalar_one()


def _add_messages(conversation_id: int, question: str) -> int:
    """The question, and its answer to come (empty, marked streaming); the answer's id."""
    connection = db.session.connection()
    question_row = {"conversation_id": conversation_id, "role": "user", "content": question}
    connection.execute(_ADD_MESSAGE, question_row)
    answer_row = {
        "conversation_id": conversation_id,
        "role": "assistant",
        "status": MessageStatus.STREAMING,
    }
    return connection.execute(_ADD_MESSAGE, answer_row).scalar_one()


def begin_turn(owner: str, public_id: str | None, text: object) -> Turn:
    """Save the shopper's message and an answer to come, or refuse with `ChatRefused`."""
    question = clean_message(text)
    conversation = find_conversation(owner, public_id)
    if public_id and conversation is None:
        raise ChatRefused(404, "That conversation is gone. Start a new one.")
    busy = ChatRefused(429, "The assistant is still answering your last message. Wait, or stop it.")
    if _answering(owner):
        raise busy
    history: list[tuple[str, str]] = []
    if conversation is None:
        public_id = secrets.token_urlsafe(16)
        conversation_id = _start_conversation(owner, public_id, question)
    elif conversation.tokens_used >= current_app.config["SHOPAI_CHAT_CONVERSATION_TOKENS"]:
        raise ChatRefused(
            429, "This conversation has reached its length limit. Start a new conversation."
        )
    elif not _claim(conversation.id):
        db.session.rollback()
        raise busy
    else:
        # Read before the commit, which expires every attribute (reading one after it
        # would cost a query per object before the first token).
        conversation_id, public_id = conversation.id, conversation.public_id
        history = [
            (m.role, m.content)
            for m in conversation.messages
            if m.content and m.status != MessageStatus.STREAMING
        ]
    reply_id = _add_messages(conversation_id, question)
    db.session.commit()
    earlier = next((t for role, t in reversed(history) if role == "user"), None)
    return Turn(conversation_id, public_id, reply_id, question, history, earlier)


# -- stopping ----------------------------------------------------------------------------

_stops: dict[int, threading.Event] = {}
_stops_lock = threading.Lock()


def request_stop(owner: str, public_id: str) -> bool:
    """Stop the answer being written in `public_id`, if this process is writing it.
    (Closing the stream stops it in any process; this is for clients that cannot.)"""
    conversation = find_conversation(owner, public_id)
    if conversation is None:
        return False
    with _stops_lock:
        flags = [
            _stops[m.id]
            for m in conversation.messages
            if m.status == MessageStatus.STREAMING and m.id in _stops
        ]
    for flag in flags:
        flag.set()
    return bool(flags)


# -- running a turn ----------------------------------------------------------------------


@dataclass
class _Outcome:
    status: MessageStatus = MessageStatus.COMPLETE
    notice: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cited: list[int] = field(default_factory=list)


def _facts(products: list[Product]) -> dict[int, ProductFacts]:
    return {
        p.id: ProductFacts(p.id, p.name, p.price, url_for("catalog.product", key=p.slug))
        for p in products
    }


def search_only_reply(retrieval: Retrieval) -> str:
    """What the assistant says without a model: the search's own results."""
    subject = retrieval.query or (
        retrieval.constraints.category.name if retrieval.constraints.category else ""
    )
    about = f" matching “{subject}”" if subject else ""
    if not retrieval.products:
        return f"I couldn't find products{about}. Try other words, or browse the categories."
    lines = [f"Here are products{about}:", ""]
    # References, like the model's: the guard turns them into the shop's links.
    lines += [f"- [P{product.id}] — {money(product.price)}" for product in retrieval.products]
    return "\n".join(lines)


def _embedded_chat() -> bool:
    """Whether the chat model is the embedded one (small, on this machine's CPU)."""
    return bool(current_app.config["SHOPAI_AI"].feature("chat").backend == "local")


def prompt_budget() -> PromptBudget:
    """The prompt's size for the chat backend: compact for the embedded model (its first
    token waits for the whole prompt to be read), SHOPAI_CHAT_PROMPT_PRODUCTS overriding
    the number of products listed."""
    budget = EMBEDDED if _embedded_chat() else HOSTED
    products = current_app.config["SHOPAI_CHAT_PROMPT_PRODUCTS"]
    return replace(budget, products=products) if products else budget


SPENT_MAX_AGE = 1.0  # seconds a read of the day's spending is trusted for


def _budget_left() -> bool:
    spent = recently_spent_today("chat", SPENT_MAX_AGE)
    return spent < current_app.config["SHOPAI_CHAT_DAILY_TOKENS"]


# Where a model that runs on past its answer starts imitating its prompt: the small
# embedded model also writes "Shopper:" mid-line (seen in bench/assistant.py).
STOP_AT = ["Shopper:", "\nProducts (from the shop"]


def stop_strings() -> list[str]:
    """Where the model's answer ends: STOP_AT, and for the embedded model the openings
    of its rules too (`prompt.RECITED_RULES`)."""
    return STOP_AT + list(RECITED_RULES) if _embedded_chat() else STOP_AT


UNAVAILABLE = "The assistant model is unavailable right now: this is a search-only answer."
BUDGET_SPENT = "The assistant has used today's budget: this is a search-only answer."
CUT_OFF = "The answer was cut off. Try asking again."
BROKEN = "Something went wrong while answering. Try asking again."


def run_turn(turn: Turn, who: str | None = None) -> Generator[Event, None, None]:
    """The answer's events; the answer is saved however iteration ends (including the
    caller closing the generator: the shopper stopped it or went away)."""
    outcome = _Outcome()
    stop = threading.Event()
    with _stops_lock:
        _stops[turn.reply_id] = stop
    stream: ChatStream | None = None
    products: list[Product] = []
    guard = ReplyGuard({}, set())
    messages: list[Message] = []
    shown_by_default: list[int] = []
    try:
        retrieval = retrieve(turn.question, turn.earlier_question)
        products = retrieval.products
        # Read now: the commit below expires the products, and reading an id afterwards
        # would cost a query per product.
        shown_by_default = [p.id for p in products[:CARDS]]
        allowed = amounts_in(turn.question)
        guard = ReplyGuard(_facts(products), allowed)
        messages = build_messages(turn.history, turn.question, products, prompt_budget())
        try:
            if not _budget_left():
                raise _Limited(BUDGET_SPENT)
            db.session.commit()  # no transaction stays open while the model writes
            try:
                stream = ai_client().stream(
                    "chat",
                    messages,
                    who=who,
                    max_tokens=current_app.config["SHOPAI_CHAT_MAX_REPLY_TOKENS"],
                    temperature=0.3,
                    frequency_penalty=0.5,
                    stop=stop_strings(),
                )
            except AIError as exc:
                raise _Limited(UNAVAILABLE) from exc
            wrote = False
            try:
                for event in stream:
                    if isinstance(event, TextDelta):
                        wrote = wrote or bool(event.text.strip())
                        shown = guard.feed(event.text)
                        yield Token(shown) if shown else Waiting()
                    if stop.is_set():
                        outcome.status = MessageStatus.STOPPED
                        break
            except AIError as exc:
                if not wrote:  # timed out or failed before a word: answer from the search
                    raise _Limited(UNAVAILABLE) from exc
                outcome.status = MessageStatus.FAILED
                outcome.notice = CUT_OFF
                yield Error(CUT_OFF)
            # A model that ended without a word (the small embedded one, stopped where it
            # began by echoing its prompt): the search answers instead of a blank.
            if (
                not wrote
                and outcome.status == MessageStatus.COMPLETE
                and (shown := guard.feed(search_only_reply(retrieval)))
            ):
                yield Token(shown)
            if rest := guard.finish():
                yield Token(rest)
        except _Limited as limited:
            outcome.status = MessageStatus.LIMITED
            outcome.notice = limited.notice
            guard = ReplyGuard(_facts(products), allowed)
            guard.feed(search_only_reply(retrieval))
            guard.finish()
            yield Token(guard.text)
    except GeneratorExit:
        outcome.status = MessageStatus.STOPPED
        raise
    except Exception:
        log.exception("assistant: answer %s failed", turn.reply_id)
        outcome.status = MessageStatus.FAILED
        outcome.notice = BROKEN
        yield Error(BROKEN)
    finally:
        with _stops_lock:
            _stops.pop(turn.reply_id, None)
        if stream is not None:
            stream.close()  # cancels generation upstream if it is still running
            usage = stream.usage
            outcome.prompt_tokens = usage.prompt_tokens if usage else estimate_tokens(messages)
            outcome.completion_tokens = (
                usage.completion_tokens if usage else estimate_tokens([{"content": guard.text}])
            )
        outcome.cited = guard.cited or shown_by_default
        _save(turn, guard.text, outcome)
    cards = cards_for(outcome.cited)
    yield Products(cards)
    html = str(render_reply(guard.text))
    yield Done(
        turn.public_id, turn.reply_id, outcome.status, guard.text, html, outcome.notice, cards
    )


class _Limited(Exception):
    def __init__(self, notice: str) -> None:
        super().__init__(notice)
        self.notice = notice


def _save(turn: Turn, text: str, outcome: _Outcome) -> None:
    """The answer, and its conversation free for the next message: two UPDATEs by
    primary key (loading the rows first would cost two more queries per answer)."""
    db.session.rollback()  # whatever the turn left half-done; the answer is what counts
    connection = db.session.connection()
    connection.execute(
        _SAVE_ANSWER,
        {
            "message_id": turn.reply_id,
            "content": text,
            "status": outcome.status,
            "product_ids": outcome.cited,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
        },
    )
    connection.execute(
        _END_ANSWERING,
        {
            "conversation_id": turn.conversation_id,
            "spent": outcome.prompt_tokens + outcome.completion_tokens,
            "now": utcnow(),
        },
    )
    db.session.commit()


def answer(turn: Turn, who: str | None = None) -> Done:
    """A whole turn at once (JSON clients, the cookbook's /chat-gpt)."""
    done = None
    for event in run_turn(turn, who):
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done


# -- ratings and housekeeping ------------------------------------------------------------


def rate(owner: str, message_id: int, rating: int) -> ChatMessage | None:
    """The shopper's thumbs up (1), down (-1) or neither (0) on one of their answers."""
    message = db.session.scalar(
        select(ChatMessage)
        .join(Conversation)
        .where(
            ChatMessage.id == message_id,
            ChatMessage.role == "assistant",
            Conversation.owner == owner,
        )
    )
    if message is None or message.status == MessageStatus.STREAMING:
        return None
    message.rating = rating or None
    message.rated_at = utcnow() if rating else None
    db.session.commit()
    return message


def expire_conversations(older_than: timedelta) -> int:
    """Delete conversations untouched for `older_than`; returns how many."""
    cutoff = utcnow() - older_than
    ids = list(db.session.scalars(select(Conversation.id).where(Conversation.updated_at < cutoff)))
    if ids:
        db.session.execute(delete(ChatMessage).where(ChatMessage.conversation_id.in_(ids)))
        db.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
    db.session.commit()
    return len(ids)
