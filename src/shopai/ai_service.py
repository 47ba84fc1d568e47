"""The app's AI client: built once per app from validated settings, recording usage."""

from __future__ import annotations

from flask import Flask, current_app

from .ai.client import AIClient
from .extensions import db
from .usage.services import UsageLedger

EXTENSION_KEY = "shopai.ai"


def init_ai(app: Flask) -> None:
    with app.app_context():
        ledger = UsageLedger(db.engine)
    app.extensions[EXTENSION_KEY] = AIClient(app.config["SHOPAI_AI"], on_usage=ledger)


def ai_client() -> AIClient:
    """The current app's AI client (features call this, never construct their own)."""
    return current_app.extensions[EXTENSION_KEY]
