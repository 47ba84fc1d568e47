"""Fetching images that a backend returns as URLs, without becoming an SSRF proxy.

Only http(s). The host is resolved once, every address it resolves to must be
public unless private addresses are explicitly allowed (a LocalAI box on the LAN,
the test server), and the connection goes to the address that was checked (no
second lookup a rebinding DNS server could answer differently; no proxy from the
environment). Redirects are followed only within the same origin, the body is
capped while it streams, and only raster image types are accepted.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx2

from .errors import AITimeout, ImageDownloadError

MAX_REDIRECTS = 3
RASTER_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def _public_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to; refuses a host with any non-public address."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ImageDownloadError(f"cannot resolve image host {host!r}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private and not all(address.is_global for address in addresses):
        raise ImageDownloadError(f"image host {host!r} resolves to a non-public address")
    return str(addresses[0])


def _pinned(url: str, allow_private: bool) -> tuple[str, dict[str, str], dict[str, str]]:
    """`url` rewritten to the checked IP, with the Host header and TLS name kept."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageDownloadError("image URLs must be http(s) with a host")
    default_port = 443 if parts.scheme == "https" else 80
    address = _public_address(parts.hostname, parts.port or default_port, allow_private)
    netloc = f"[{address}]" if ":" in address else address
    host_header = parts.hostname
    if parts.port:
        netloc += f":{parts.port}"
        host_header += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def download_image(
    url: str, *, max_bytes: int, timeout: float, allow_private: bool = False
) -> bytes:
    """The body of `url` if it is a raster image of at most `max_bytes` bytes, fetched
    (redirects included) within `timeout` seconds."""
    origin = _origin(url)
    deadline = time.monotonic() + timeout
    with httpx2.Client(
        timeout=httpx2.Timeout(timeout), follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _pinned(url, allow_private)
            try:
                with client.stream(
                    "GET", target, headers=headers, extensions=extensions
                ) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        if _origin(url) != origin:
                            raise ImageDownloadError("image URL redirects to another host")
                        continue
                    return _read_image(response, max_bytes, deadline)
            except httpx2.TimeoutException as exc:
                raise AITimeout(f"image download took longer than {timeout:g} s") from exc
            except httpx2.HTTPError as exc:
                raise ImageDownloadError(f"image download failed: {type(exc).__name__}") from exc
    raise ImageDownloadError("too many redirects for an image URL")


def _read_image(response: httpx2.Response, max_bytes: int, deadline: float) -> bytes:
    if response.status_code != 200:
        raise ImageDownloadError(f"image URL answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in RASTER_TYPES:
        raise ImageDownloadError(f"image URL served {content_type or 'no content type'}")
    declared = response.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise ImageDownloadError(f"image is larger than {max_bytes:,} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ImageDownloadError(f"image is larger than {max_bytes:,} bytes")
        if time.monotonic() > deadline:
            raise AITimeout("image download ran out of time")
    return bytes(body)
