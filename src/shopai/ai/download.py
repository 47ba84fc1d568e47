"""Fetching images that a backend returns as URLs, without becoming an SSRF proxy.

Only http(s); every address the host resolves to must be public unless private
addresses are explicitly allowed (a LocalAI box on the LAN, the test server);
redirects are followed only within the same origin; the body is capped while
it streams, and must be declared as an image.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx2

from .errors import AITimeout, ImageDownloadError

MAX_REDIRECTS = 3


def _check_address(host: str, port: int, allow_private: bool) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ImageDownloadError(f"cannot resolve image host {host!r}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not allow_private and not address.is_global:
            raise ImageDownloadError(f"image host {host!r} resolves to a non-public address")


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageDownloadError("image URLs must be http(s) with a host")
    _check_address(
        parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def download_image(
    url: str, *, max_bytes: int, timeout: float, allow_private: bool = False
) -> bytes:
    """The body of `url` if it is an image of at most `max_bytes` bytes."""
    origin = _origin(url)
    with httpx2.Client(timeout=httpx2.Timeout(timeout), follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(url, allow_private)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        target = urljoin(url, response.headers.get("location", ""))
                        if _origin(target) != origin:
                            raise ImageDownloadError("image URL redirects to another host")
                        url = target
                        continue
                    return _read_image(response, max_bytes)
            except httpx2.TimeoutException as exc:
                raise AITimeout(f"image download took longer than {timeout:g} s") from exc
            except httpx2.HTTPError as exc:
                raise ImageDownloadError(f"image download failed: {type(exc).__name__}") from exc
    raise ImageDownloadError("too many redirects for an image URL")


def _read_image(response: httpx2.Response, max_bytes: int) -> bytes:
    if response.status_code != 200:
        raise ImageDownloadError(f"image URL answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise ImageDownloadError(f"image URL served {content_type or 'no content type'}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageDownloadError(f"image is larger than {max_bytes:,} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ImageDownloadError(f"image is larger than {max_bytes:,} bytes")
    return bytes(body)
