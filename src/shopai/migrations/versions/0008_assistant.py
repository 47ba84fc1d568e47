"""The shop assistant's conversations and messages.

Revision ID: 0008_assistant
Revises: 0007_search_visitor
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_assistant"
down_revision = "0007_search_visitor"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("answering_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint("public_id", name=op.f("uq_conversation_public_id")),
    )
    op.create_index("ix_conversation_owner", "conversation", ["owner"])
    op.create_index("ix_conversation_updated_at", "conversation", ["updated_at"])
    op.create_index("ix_conversation_answering_until", "conversation", ["answering_until"])
    op.create_table(
        "chat_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_chat_message_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_message")),
    )
    op.create_index("ix_chat_message_conversation_id", "chat_message", ["conversation_id"])
    op.create_index("ix_chat_message_rating", "chat_message", ["rating", "id"])


def downgrade():
    op.drop_table("chat_message")
    op.drop_table("conversation")
