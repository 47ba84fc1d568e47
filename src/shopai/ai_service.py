"""The app's AI client: built once per app from validated settings, recording usage."""

from __future__ import annotations

from flask import Flask, current_app

from .ai.client import AIClient
from .extensions import db
from .usage.services import UsageLedger

EXTENSION_KEY = "shopai.ai"
LEDGER_KEY = "shopai.usage"


def init_ai(app: Flask) -> None:
    with app.app_context():
        ledger = UsageLedger(db.engine)
    app.extensions[LEDGER_KEY] = ledger
    app.extensions[EXTENSION_KEY] = AIClient(app.config["SHOPAI_AI"], on_usage=ledger)


def ai_client() -> AIClient:
    """The current app's AI client (features call this, never construct their own)."""
    return current_app.extensions[EXTENSION_KEY]


def flush_usage(timeout: float = 5.0) -> bool:
    """Wait until the usage of every AI call made so far is in the ledger. Usage is
    written by a background thread; a CLI command about to exit, or a test about to read
    the ledger, calls this first. False if `timeout` ran out."""
    ledger: UsageLedger = current_app.extensions[LEDGER_KEY]
    return ledger.flush(timeout)
