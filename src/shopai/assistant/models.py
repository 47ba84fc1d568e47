"""Conversations with the shop assistant, kept so a refresh (or another tab) shows them.

A conversation belongs to one browser session: `owner` is a hash of a random token in
that session's signed cookie, and the public id is random too, so knowing someone's
conversation id is not enough to read it. Old conversations are deleted by a periodic
job (`assistant.expire`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import Model

PUBLIC_ID_CHARS = 32
OWNER_HASH_CHARS = 64
TITLE_CHARS = 120


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"  # being written right now
    STOPPED = "stopped"  # the shopper stopped it; the partial answer is kept
    LIMITED = "limited"  # a search-only answer: the model was down or over budget
    FAILED = "failed"  # the model's answer was cut off


class Conversation(Model):
    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(PUBLIC_ID_CHARS), unique=True)
    owner: Mapped[str] = mapped_column(String(OWNER_HASH_CHARS), index=True)
    title: Mapped[str] = mapped_column(String(TITLE_CHARS), default="")
    tokens_used: Mapped[int] = mapped_column(default=0)
    # Set while an answer is being written (until when it may take): one at a time.
    answering_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    messages: Mapped[list[ChatMessage]] = relationship(
        back_populates="conversation",
        order_by="ChatMessage.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"<Conversation {self.public_id} {self.tokens_used} tokens>"


class ChatMessage(Model):
    """One message. For the assistant, `content` is the guarded markdown as shown (prices
    checked, product references resolved) and `product_ids` the cards shown with it."""

    __tablename__ = "chat_message"
    __table_args__ = (Index("ix_chat_message_rating", "rating", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.COMPLETE)
    product_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    rating: Mapped[int | None]
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    def __repr__(self) -> str:
        return f"<ChatMessage {self.id} {self.role} {self.status}>"
