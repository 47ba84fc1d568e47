"""Errors as JSON for API clients and as pages for browsers."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, make_response, render_template
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.wrappers import Response

from .extensions import db
from .web import wants_json

# Headers that carry meaning on an error response and must survive re-rendering.
_KEPT_HEADERS = ("Retry-After", "Allow", "WWW-Authenticate")


def json_error(code: int, name: str, message: str, **extra: Any) -> Response:
    """The one JSON error shape: {"error": {"code", "name", "message", ...}}."""
    return make_response(
        jsonify({"error": {"code": code, "name": name, "message": message, **extra}}), code
    )


def handle_http_error(error: HTTPException) -> Response:
    """Every HTTP error, including the 500 Flask raises for unhandled exceptions.

    Flask logs the original exception (and re-raises it under test) before
    calling this, so nothing here swallows a traceback.
    """
    original = error.get_response()
    code = error.code or 500
    if code < 400:  # a redirect raised as an exception
        return original
    if isinstance(error, SecurityError):
        return _untrusted_host()
    if code >= 500:
        db.session.rollback()
    if wants_json():
        response = json_error(code, error.name, error.description or "")
    else:
        html = render_template("errors/error.html", error=error, code=code)
        response = make_response(html, code)
    for header in _KEPT_HEADERS:
        if header in original.headers:
            response.headers[header] = original.headers[header]
    return response


def _untrusted_host() -> Response:
    """A Host header outside SHOPAI_TRUSTED_HOSTS. No URL can be built for such a
    request (that is the point), so no page template; and the host is not echoed."""
    message = "This shop does not answer to that host name."
    if wants_json():
        return json_error(400, "Bad Request", message)
    return make_response(message, 400, {"Content-Type": "text/plain; charset=utf-8"})


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
