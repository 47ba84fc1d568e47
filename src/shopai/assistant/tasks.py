"""Housekeeping of the assistant: conversations are not kept forever."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from ..jobs import JobContext, job_handler
from .services import expire_conversations


@job_handler("assistant.expire", every=timedelta(hours=1))
def expire(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Delete conversations idle for SHOPAI_CHAT_RETENTION_DAYS (hourly)."""
    days = current_app.config["SHOPAI_CHAT_RETENTION_DAYS"]
    deleted = expire_conversations(timedelta(days=days))
    ctx.progress(deleted, deleted, f"deleted {deleted} conversations")
