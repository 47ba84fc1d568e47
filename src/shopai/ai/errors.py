"""The few exceptions callers handle. Every backend failure is mapped to one of these."""

from __future__ import annotations


class AIError(Exception):
    """Base class; the message is safe to log (it never contains keys or prompts)."""


class AIConfigError(AIError):
    """A setting is wrong or a local model file is missing."""


class AITimeout(AIError):
    """The backend did not answer within the feature's timeout."""


class AIRateLimited(AIError):
    """The backend asked us to slow down (HTTP 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AIUnavailable(AIError):
    """The backend is down, erroring (5xx), unreachable, or its circuit breaker is open."""


class AIBadResponse(AIError):
    """The backend answered, but not usefully: malformed body, cut-off stream, invalid JSON."""


class AIRequestRefused(AIError):
    """The backend refused the request itself (4xx other than 429): bad model, key, or input."""


class ImageDownloadError(AIError):
    """An image URL was refused (scheme, address, redirect) or its body was not acceptable."""
