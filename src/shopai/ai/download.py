"""Fetching images that a backend returns as URLs, without becoming an SSRF proxy.

Only http(s). The host is resolved once, every address it resolves to must be
public unless private addresses are explicitly allowed (a LocalAI box on the LAN,
the test server), and the connection goes to the address that was checked (no
second lookup a rebinding DNS server could answer differently; no proxy from the
environment). Redirects are followed only within the same origin, the body is
capped while it streams, and only raster image types are accepted.

The whole download (every redirect hop and DNS lookup included) gets one deadline. A
lookup runs on a thread of its own, since getaddrinfo takes no timeout. httpx2 timeouts
bound each connect, write and read separately, each with the full value, so a slow
server could stretch a download to several times its budget; here every one of those
network steps waits at most until the deadline (see `_DeadlineBackend`).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore2
import httpx2

from .errors import AITimeout, ImageDownloadError

MAX_REDIRECTS = 3
RASTER_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges whose low 32 bits are an IPv4 address that the host, a NAT64 gateway or an
# SIIT translator may turn back into IPv4: IPv4-compatible, IPv4-mapped, IPv4-translated,
# and the NAT64 well-known prefix.
_IPV4_IN_LOW_BITS = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
# NAT64 for local use: where the IPv4 address sits depends on the site's prefix length.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_public_address(address: IPAddress) -> bool:
    """Whether an image may be fetched from `address` when private ones are not allowed.

    `is_global` alone is not enough: IPv6 has several spellings of an IPv4 address
    (IPv4-compatible `::7f00:1`, mapped, translated, NAT64 `64:ff9b::7f00:1`, 6to4
    `2002:7f00:1::`, Teredo server and client) that `ipaddress` may call global while
    the host's stack, a NAT64 gateway or a tunnel relay delivers them to loopback, the LAN
    or a cloud metadata service. So every IPv4 address one can stand for must be global
    too, and the local-use NAT64 prefix, whose layout is site-specific, is refused."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _NAT64_LOCAL_USE:
        return False
    return all(embedded.is_global for embedded in _embedded_ipv4(address))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses `address` can be translated to (see `is_public_address`)."""
    embedded = [address.sixtofour, *(address.teredo or ())]
    if any(address in network for network in _IPV4_IN_LOW_BITS):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ipv4 for ipv4 in embedded if ipv4 is not None]


# (host, port) -> the host's IP addresses, as strings; raises socket.gaierror if it has none.
Resolver = Callable[[str, int], Sequence[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver's TCP addresses for `host` (the default `Resolver`)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def _resolve_by(deadline: float, budget: float, resolve: Resolver) -> Resolver:
    """`resolve`, waited for at most until `deadline`.

    getaddrinfo takes no timeout, so the lookup runs on a daemon thread of its own. One
    that outlives the deadline is abandoned: it finishes in the background and its answer
    is dropped. A thread per lookup, not a pool: a pool's workers would hold up interpreter
    exit behind a hung resolver, and a forked child inherits a pool without its threads."""

    def resolve_in_time(host: str, port: int) -> Sequence[str]:
        answer: Future[Sequence[str]] = Future()

        def lookup() -> None:
            try:
                answer.set_result(resolve(host, port))
            except Exception as exc:
                answer.set_exception(exc)

        left = _time_left(deadline, budget)
        threading.Thread(target=lookup, name="shopai-image-dns", daemon=True).start()
        if not wait([answer], timeout=left).done:
            raise AITimeout(f"image download took longer than {budget:g} s")
        return answer.result()

    return resolve_in_time


def _public_address(host: str, port: int, allow_private: bool, resolve: Resolver) -> str:
    """The address to connect to; refuses a host with any non-public address."""
    try:
        found = resolve(host, port)
    except socket.gaierror as exc:
        raise ImageDownloadError(f"cannot resolve image host {host!r}") from exc
    if not found:
        raise ImageDownloadError(f"cannot resolve image host {host!r}")
    addresses = [ipaddress.ip_address(address) for address in found]
    if not allow_private and not all(is_public_address(address) for address in addresses):
        raise ImageDownloadError(f"image host {host!r} resolves to a non-public address")
    return str(addresses[0])


def _pinned(
    url: str, allow_private: bool, resolve: Resolver
) -> tuple[str, dict[str, str], dict[str, str]]:
    """`url` rewritten to the checked IP, with the Host header and TLS name kept."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageDownloadError("image URLs must be http(s) with a host")
    default_port = 443 if parts.scheme == "https" else 80
    address = _public_address(parts.hostname, parts.port or default_port, allow_private, resolve)
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
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool = False,
    resolve: Resolver = resolve_host,
) -> bytes:
    """The body of `url` if it is a raster image of at most `max_bytes` bytes, fetched
    (redirects and DNS lookups included) within `timeout` seconds. `resolve` looks hosts
    up (tests pass their own)."""
    origin = _origin(url)
    deadline = time.monotonic() + timeout
    resolve = _resolve_by(deadline, timeout, resolve)
    with httpx2.Client(
        transport=_DeadlineTransport(deadline), follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _pinned(url, allow_private, resolve)
            try:
                with client.stream(
                    "GET",
                    target,
                    headers=headers,
                    extensions=extensions,
                    timeout=_time_left(deadline, timeout),
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


def _time_left(deadline: float, budget: float) -> float:
    """Seconds until `deadline`, the timeout of the next request (each hop gets only
    what the previous ones left)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise AITimeout(f"image download took longer than {budget:g} s")
    return left


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


# --- network steps bounded by the deadline ----------------------------------------------------


def _until(deadline: float, timeout: float | None, expired: type[Exception]) -> float:
    """`timeout` shortened to the time left before `deadline`.

    Raises `expired` once no time is left rather than returning 0: a socket timeout of 0
    makes the socket non-blocking, and the read would fail as an error, not a timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the image download's time budget ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the deadline, so a
    body that stalls or trickles cannot wait a fresh timeout per read."""

    def __init__(self, inner: httpcore2.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout = _until(self._deadline, timeout, httpcore2.ReadTimeout)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout = _until(self._deadline, timeout, httpcore2.WriteTimeout)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        timeout = _until(self._deadline, timeout, httpcore2.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    """httpcore2's socket backend, with connects and the streams they open bounded by the
    deadline. httpcore2 passes each step the request's own timeout, taken once per
    request; this is the one place that sees every step, so it enforces what is left."""

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore2.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        timeout = _until(self._deadline, timeout, httpcore2.ConnectTimeout)
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(inner, self._deadline)


# httpcore2 errors and the httpx2 ones `download_image` handles; httpx2 maps them the same
# way, but only inside its own transport.
_HTTPX_ERRORS: dict[type[Exception], type[httpx2.TransportError]] = {
    httpcore2.ConnectTimeout: httpx2.ConnectTimeout,
    httpcore2.ReadTimeout: httpx2.ReadTimeout,
    httpcore2.WriteTimeout: httpx2.WriteTimeout,
    httpcore2.PoolTimeout: httpx2.PoolTimeout,
    httpcore2.ConnectError: httpx2.ConnectError,
    httpcore2.ReadError: httpx2.ReadError,
    httpcore2.WriteError: httpx2.WriteError,
    httpcore2.RemoteProtocolError: httpx2.RemoteProtocolError,
    httpcore2.LocalProtocolError: httpx2.LocalProtocolError,
    httpcore2.UnsupportedProtocol: httpx2.UnsupportedProtocol,
}
_CORE_ERRORS = (
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """Raise httpcore2 errors as their httpx2 counterparts (timeouts stay timeouts)."""
    try:
        yield
    except _CORE_ERRORS as exc:
        timed_out = isinstance(exc, httpcore2.TimeoutException)
        fallback = httpx2.TimeoutException if timed_out else httpx2.TransportError
        raise _HTTPX_ERRORS.get(type(exc), fallback)(str(exc)) from exc


class _ResponseBody(httpx2.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class _DeadlineTransport(httpx2.BaseTransport):
    """What `httpx2.HTTPTransport` does without proxies, over `_DeadlineBackend`:
    httpx2's transport offers no way to hand httpcore2 a network backend."""

    def __init__(self, deadline: float) -> None:
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=_DeadlineBackend(deadline),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.SyncByteStream)
        url = request.url
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
