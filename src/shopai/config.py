"""Settings come from the environment and are checked once, at start-up.

A mistyped setting should stop the shop with a message that names the
variable, not surface later as a confusing runtime error.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .ai.errors import AIConfigError
from .ai.settings import AISettings

ENVIRONMENTS = ("development", "production", "testing")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class _Env:
    environ: Mapping[str, str]

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _local_secret_key(instance_path: Path) -> str:
    """A random key kept in the instance folder, so development needs no setup yet
    sessions survive restarts and no key is shared between checkouts."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def load_settings(instance_path: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables.

    Every variable read here is documented in `.env.example`.
    """
    env = _Env(os.environ if environ is None else environ)

    shop_env = env.text("SHOPAI_ENV", "production").lower()
    if shop_env not in ENVIRONMENTS:
        raise ConfigError(f"SHOPAI_ENV must be one of {', '.join(ENVIRONMENTS)}, got {shop_env!r}")

    secret_key = env.text("SECRET_KEY")
    if not secret_key:
        if shop_env != "development":
            raise ConfigError(
                f"SECRET_KEY is required when SHOPAI_ENV={shop_env} "
                '(generate one with: python -c "import secrets; print(secrets.token_hex(32))")'
            )
        secret_key = _local_secret_key(Path(instance_path))
    elif shop_env == "production" and len(secret_key) < 16:
        raise ConfigError("SECRET_KEY must be a random value of at least 16 characters")

    database_url = env.text("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'shopai.db'}"
    if database_url.startswith("postgres://"):  # Heroku-style URLs
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    try:
        make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a database URL (e.g. postgresql://u:p@host/db)"
        ) from None

    login_limit = env.text("SHOPAI_LOGIN_RATE_LIMIT", "10 per minute")
    try:
        parse_many(login_limit)
    except ValueError:
        raise ConfigError(
            f"SHOPAI_LOGIN_RATE_LIMIT must look like '10 per minute', got {login_limit!r}"
        ) from None

    upload_dir = Path(env.text("SHOPAI_UPLOAD_DIR") or Path(instance_path) / "uploads")
    https = env.flag("SHOPAI_HTTPS")
    max_upload_mb = env.integer("SHOPAI_MAX_UPLOAD_MB", 8, minimum=1)

    try:
        ai_settings = AISettings.from_env(env.environ)
    except AIConfigError as exc:
        raise ConfigError(str(exc)) from None

    return {
        "SHOPAI_ENV": shop_env,
        "SHOPAI_AI": ai_settings,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SHOPAI_UPLOAD_DIR": str(upload_dir),
        "SHOPAI_MAX_IMAGE_PIXELS": env.integer("SHOPAI_MAX_IMAGE_PIXELS", 40_000_000, minimum=1),
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024,
        "SHOPAI_PER_PAGE": env.integer("SHOPAI_PER_PAGE", 12, minimum=1),
        "SHOPAI_BEHIND_PROXY": env.flag("SHOPAI_BEHIND_PROXY"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "RATELIMIT_STORAGE_URI": env.text("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SHOPAI_LOGIN_RATE_LIMIT": login_limit,
        "WTF_CSRF_TIME_LIMIT": None,
    }
