"""A free loopback port for the servers the tests start (PostgreSQL, Redis, gunicorn)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now; another process may still take it before
    the caller binds it, so callers that can retry do."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
