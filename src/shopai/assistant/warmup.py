"""Loading the embedded model before the first shopper asks, not while they wait.

The embedded server starts on first use: loading the GGUF file and reading the system
prompt took the first answer 2 s on two cores. The first request the app serves (any
page) starts both in a background thread instead; llama.cpp keeps the system prompt in
its prompt cache, so later answers only read what follows it. Nothing is recorded in
the usage ledger: no shopper asked anything.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from ..ai.errors import AIError
from ..ai.types import Message
from ..ai_service import ai_client
from .prompt import SYSTEM_PROMPT

log = logging.getLogger(__name__)

STARTED_KEY = "shopai.assistant.warm_up"
WARM_UP_SECONDS = 120.0  # loading on a busy machine; an answer waits for it either way
_lock = threading.Lock()


def warm_up_in_background(app: Flask) -> None:
    """Once per app, when the chat backend is the embedded model: load it and read the
    system prompt in a daemon thread. Tests load nothing they did not ask for."""
    if STARTED_KEY in app.extensions:
        return
    with _lock:
        if STARTED_KEY in app.extensions:
            return
        app.extensions[STARTED_KEY] = True
    if app.testing or app.config["SHOPAI_AI"].feature("chat").backend != "local":
        return
    threading.Thread(target=_warm_up, args=(app,), name="shopai-chat-warm-up", daemon=True).start()


def _warm_up(app: Flask) -> None:
    messages: list[Message] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Hello"},
    ]
    with app.app_context():
        try:
            backend, _ = ai_client().backend("chat")  # starts the embedded server
            model = app.config["SHOPAI_AI"].feature("chat").model
            stream = backend.open_stream(model, messages, timeout=WARM_UP_SECONDS, max_tokens=1)
            try:
                for _ in backend.iter_stream(stream):
                    pass
            finally:
                stream.close()
        except AIError as exc:
            log.warning("assistant: the embedded model could not be warmed up: %s", exc)
