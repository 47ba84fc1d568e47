"""Logging set up once per app: one line format, the request id on every line, no secrets.

A request id ties together everything one request logged (and the model calls it
made); it comes from the `X-Request-ID` header of a proxy that sets one, or is made
here, and is sent back so a shopper's report can be found in the logs.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("shopai.access")

# What a secret looks like in a message: API keys, bearer tokens, credentials in
# URLs, password fields. Replaced before the line is written anywhere.
_SECRETS = (
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)(//[^/\s:@]+:)[^/\s@]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(password|passwd|secret|api_key|token)=[^&\s]+"), r"\1=***"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request) and redacts secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class ShopLogHandler(logging.StreamHandler):
    """Standard error as it is when a line is written, not when the app was made
    (servers and test runners replace it). Its class marks the handler this module
    installed, so the next app made in the process replaces it instead of adding one."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger("shopai")
    for handler in list(logger.handlers):
        if isinstance(handler, ShopLogHandler) or handler is default_handler:
            logger.removeHandler(handler)
    handler = ShopLogHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RequestContextFilter())
    logger.addHandler(handler)
    logger.setLevel(app.config["SHOPAI_LOG_LEVEL"])
    app.before_request(_start_request)
    app.after_request(_finish_request)


def _start_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
        elapsed_ms = (time.perf_counter() - g.request_started) * 1000
        access_log.info(
            "%s %s %s %.1f ms", request.method, request.path, response.status_code, elapsed_ms
        )
    return response
