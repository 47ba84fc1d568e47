"""Response headers that make injected markup inert and pages unframeable."""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

# Scripts and styles only from our own static files: no inline script can run,
# so a stored-XSS payload that slipped past escaping still does nothing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # Bootstrap's form controls use data: SVG icons
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response


# Two years, the preload lists' minimum; no includeSubDomains, since other hosts
# under the shop's domain may not serve HTTPS.
STRICT_TRANSPORT_SECURITY = "max-age=63072000"


def set_hsts_header(response: Response) -> Response:
    """Browsers that once reached the shop over HTTPS never try plain HTTP again,
    so a network attacker cannot strip TLS from a later visit."""
    response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response


def register_security_headers(app: Flask) -> None:
    app.after_request(set_security_headers)
    if app.config["SHOPAI_HTTPS"]:
        app.after_request(set_hsts_header)
