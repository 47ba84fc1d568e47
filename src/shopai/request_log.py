"""Logging set up once per app: one line format, the request id on every line, no secrets.

A request id ties together everything one request logged (and the model calls it
made); it comes from the `X-Request-ID` header of a proxy that sets one, or is made
here, and is sent back so a shopper's report can be found in the logs.

Lines are text by default (for people); `SHOPAI_LOG_FORMAT=json` writes one JSON
object per line instead (for log collectors, which then need no parsing rules):
time, level, logger, request_id, message, and for access lines method, path,
status and duration_ms. Redaction happens before either format sees a record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("shopai.access")
# Access lines for probes go out at DEBUG: a load balancer asks every few seconds.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})
# The fields access lines carry besides the message (JSON format only).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")

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


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Everything a record carries that may hold text from
    outside (the message, an access line's path, a traceback) is redacted; the message
    already was, by `RequestContextFilter`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                value = getattr(record, name)
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT)


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
    handler.setFormatter(make_formatter(app.config.get("SHOPAI_LOG_FORMAT", "text")))
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
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        access_log.log(
            level,
            "%s %s %s %.1f ms",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed_ms, 1),
            },
        )
    return response
