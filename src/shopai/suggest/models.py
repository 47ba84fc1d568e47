"""What the suggestion engine learns and keeps.

Every text column holds `normalize_query(...)` of its text (see suggest.text), so a
query, a click and a model-made query for the same words meet on one value.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model
from .text import MAX_QUERY_CHARS

MODEL_MAX = 128
ERROR_MAX = 500
VISITOR_HASH_CHARS = 32


class SearchQuery(Model):
    """A search shoppers submitted (the search page) or a suggestion
    they clicked. Keystrokes are never recorded: a half-typed prefix is not a search.

    `last_hits` is how many products the search found the last time it was submitted
    (None for a suggestion clicked but never submitted here)."""

    __tablename__ = "search_query"

    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(MAX_QUERY_CHARS), unique=True)
    submitted: Mapped[int] = mapped_column(default=0, index=True)
    last_hits: Mapped[int | None]
    clicks: Mapped[int] = mapped_column(default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<SearchQuery {self.query!r} x{self.submitted}>"


class SearchVisitor(Model):
    """One visitor who submitted a search on one day, as a keyed hash of (client
    address, day): no address is stored, and the same visitor counts once a day. A
    search becomes popular once SHOPAI_SUGGEST_POPULAR_MIN_SEARCHES such rows hold it,
    so one client repeating a search cannot make it popular."""

    __tablename__ = "search_visitor"
    __table_args__ = (UniqueConstraint("query_id", "visitor", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(
        ForeignKey("search_query.id", ondelete="CASCADE"), index=True
    )
    visitor: Mapped[str] = mapped_column(String(VISITOR_HASH_CHARS))
    day: Mapped[date] = mapped_column(Date)


class BlockedTerm(Model):
    """A term never suggested: it hides every suggestion that contains it as a whole
    word or run of words ("knife" hides "kitchen knife set", not "knives"); a term
    with CJK characters hides every suggestion containing it anywhere, since Chinese
    and Japanese text has no spaces. Compared after `normalize_query`, so case and
    width never matter. Products and categories are the catalog and are not hidden."""

    __tablename__ = "blocked_term"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(MAX_QUERY_CHARS), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<BlockedTerm {self.term!r}>"


class ProductQuery(Model):
    """A shopper query a model wrote for a product, kept only once the catalog search
    was seen to find the product with it. Suggested with source "ai"."""

    __tablename__ = "product_query"
    __table_args__ = (UniqueConstraint("product_id", "text"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(String(MAX_QUERY_CHARS))
    model: Mapped[str] = mapped_column(String(MODEL_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<ProductQuery {self.product_id} {self.text!r}>"


class ExpansionStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class QueryExpansion(Model):
    """Searches a model proposed for a query the catalog knew little about, each one
    verified to find products. One row per normalized query, whatever its status, so
    a query is sent to the model at most once."""

    __tablename__ = "query_expansion"

    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(MAX_QUERY_CHARS), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ExpansionStatus.PENDING.value)
    suggestions: Mapped[list[str]] = mapped_column(JSON, default=list)
    model: Mapped[str | None] = mapped_column(String(MODEL_MAX))
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<QueryExpansion {self.query!r} {self.status}>"
