"""Settings come from the environment and are checked once, at start-up.

A mistyped setting should stop the shop with a message that names the
variable, not surface later as a confusing runtime error.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .ai.errors import AIConfigError
from .ai.renderer import parse_size
from .ai.settings import AISettings
from .env import EnvReader, SettingError
from .serve import serve_settings

ENVIRONMENTS = ("development", "production", "testing")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
# What Werkzeug can compare a Host header with: a name or IPv4 address, lowercase,
# optionally with a leading dot for subdomains (IPv6 literals never match there).
_HOST_NAME = re.compile(r"\.?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _trusted_hosts(env: EnvReader, shop_env: str) -> list[str]:
    """Host names the shop answers to. Links, redirects and the API's URLs are built
    from the request's Host header, so an unchecked one lets a forged request make
    the shop point at another site (cache poisoning, password-reset style phishing)."""
    hosts = [host.lower() for host in env.words("SHOPAI_TRUSTED_HOSTS")]
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(
                f"SHOPAI_TRUSTED_HOSTS holds {host!r}: give host names or IPv4 addresses "
                "only, without scheme, path or port (e.g. shop.example.com)"
            )
    if hosts:
        return hosts
    if shop_env == "production":
        raise ConfigError(
            "SHOPAI_TRUSTED_HOSTS is required in production: the host names the shop is "
            "served as, e.g. 'shop.example.com www.shop.example.com' (a leading dot "
            "allows subdomains)"
        )
    return list(LOCAL_HOSTS)


def _local_secret_key(instance_path: Path) -> str:
    """A random key kept in the instance folder, so development needs no setup yet
    sessions survive restarts and no key is shared between checkouts."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _rate_limit(env: EnvReader, name: str, default: str) -> str:
    """A Flask-Limiter rate such as "120 per minute" (or several: "10/minute;100/day")."""
    value = env.text(name, default)
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must look like {default!r}, got {value!r}") from None
    return value


def _image_size(env: EnvReader) -> str:
    value = env.text("SHOPAI_IMAGES_SIZE", "1024x1024")
    try:
        parse_size(value)
    except ValueError as exc:
        raise ConfigError(f"SHOPAI_IMAGES_SIZE: {exc}") from None
    return value


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(env: EnvReader) -> str | None:
    """The Redis server of the job queue, or None for the SQLite queue file.

    Checked here so a typo stops the shop at start-up instead of every enqueue
    failing later; the message never repeats the URL, which may hold a password."""
    url = env.text("REDIS_URL")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not (parts.hostname or parts.path):
        raise ConfigError(
            "REDIS_URL must look like redis://[:password@]host:6379/0 "
            "(or rediss:// for TLS, unix:///path/to/redis.sock)"
        )
    try:
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ConfigError("REDIS_URL has a malformed port") from None
    return url


def _limiter_storage(env: EnvReader, redis_url: str | None) -> dict[str, Any]:
    """Flask-Limiter's storage: `RATELIMIT_STORAGE_URI` if given, else the Redis of
    `REDIS_URL` (so every web process counts against the same limits), else memory (one
    process). With Redis, an unreachable server is not an error page: the limiter
    counts in memory until it is back (per process meanwhile)."""
    uri = env.text("RATELIMIT_STORAGE_URI")
    if not uri and redis_url:
        # The `limits` library spells a Unix socket redis+unix:// (redis-py: unix://).
        uri = "redis+unix://" + redis_url[7:] if redis_url.startswith("unix://") else redis_url
    uri = uri or "memory://"
    if uri.startswith("memory://"):
        return {"RATELIMIT_STORAGE_URI": uri}
    return {
        "RATELIMIT_STORAGE_URI": uri,
        "RATELIMIT_KEY_PREFIX": "shopai",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    }


# The driver the shop is tested with (psycopg 3) for every spelling of PostgreSQL.
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg")


def _database_url(database_url: str) -> str:
    """The URL SQLAlchemy opens. `postgres://` (Heroku-style) and `postgresql://` would
    pick psycopg2, which the shop does not install: both mean psycopg 3 here."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a database URL (e.g. postgresql://u:p@host/db)"
        ) from None
    if url.drivername in _POSTGRES_SCHEMES:
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername.startswith("postgres"):
        raise ConfigError("DATABASE_URL: PostgreSQL is used through psycopg 3 (postgresql://)")
    return database_url


def load_settings(instance_path: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables.

    Every variable read here is documented in `.env.example`.
    """
    try:
        return _settings(instance_path, EnvReader(os.environ if environ is None else environ))
    except SettingError as exc:
        raise ConfigError(str(exc)) from None


def _settings(instance_path: str, env: EnvReader) -> dict[str, Any]:
    shop_env = env.choice("SHOPAI_ENV", "production", ENVIRONMENTS)

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

    database_url = _database_url(
        env.text("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'shopai.db'}"
    )

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

    redis_url = _redis_url(env)

    log_level = env.text("SHOPAI_LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"SHOPAI_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")

    return {
        "SHOPAI_ENV": shop_env,
        "SHOPAI_AI": ai_settings,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SHOPAI_UPLOAD_DIR": str(upload_dir),
        "SHOPAI_MAX_IMAGE_PIXELS": env.integer("SHOPAI_MAX_IMAGE_PIXELS", 40_000_000, minimum=1),
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024,
        "SHOPAI_PER_PAGE": env.integer("SHOPAI_PER_PAGE", 12, minimum=1),
        # Model-made suggestions (background jobs) and their daily token budget.
        "SHOPAI_SUGGEST_FROM_MODEL": env.flag("SHOPAI_SUGGEST_FROM_MODEL", True),
        "SHOPAI_SUGGEST_DAILY_TOKENS": env.integer("SHOPAI_SUGGEST_DAILY_TOKENS", 200_000),
        "SHOPAI_SUGGEST_DAILY_EXPANSIONS": env.integer("SHOPAI_SUGGEST_DAILY_EXPANSIONS", 500),
        "SHOPAI_PAGE_CACHE_SIZE": env.integer("SHOPAI_PAGE_CACHE_SIZE", 256),
        "SHOPAI_SEARCH_MIN_SIMILARITY": env.number("SHOPAI_SEARCH_MIN_SIMILARITY", 0.3),
        "SHOPAI_SEARCH_EMBED_TIMEOUT": env.number("SHOPAI_SEARCH_EMBED_TIMEOUT", 1.0, 0.05),
        "SHOPAI_SEARCH_VECTOR_RECHECK_SECONDS": env.number(
            "SHOPAI_SEARCH_VECTOR_RECHECK_SECONDS", 2.0
        ),
        "SHOPAI_BEHIND_PROXY": env.flag("SHOPAI_BEHIND_PROXY"),
        "SHOPAI_HTTPS": https,
        "SHOPAI_LOG_LEVEL": log_level,
        # "json": one JSON object per line, for log collectors (shopai.request_log).
        "SHOPAI_LOG_FORMAT": env.choice("SHOPAI_LOG_FORMAT", "text", LOG_FORMATS),
        "TRUSTED_HOSTS": _trusted_hosts(env, shop_env),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        **_limiter_storage(env, redis_url),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SHOPAI_LOGIN_RATE_LIMIT": login_limit,
        # Search suggestions (shopai.suggest): per-client rates of /api/suggest and of
        # queries handed to the model, when a query counts as little known, when a
        # search counts as popular, how often other processes' changes are looked for.
        "SHOPAI_SUGGEST_RATE_LIMIT": _rate_limit(
            env, "SHOPAI_SUGGEST_RATE_LIMIT", "120 per minute"
        ),
        "SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT": _rate_limit(
            env, "SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT", "10 per minute"
        ),
        "SHOPAI_SUGGEST_EXPANSION_GLOBAL_LIMIT": _rate_limit(
            env, "SHOPAI_SUGGEST_EXPANSION_GLOBAL_LIMIT", "60 per minute"
        ),
        "SHOPAI_SUGGEST_EXPAND_BELOW_HITS": env.integer("SHOPAI_SUGGEST_EXPAND_BELOW_HITS", 3),
        "SHOPAI_SUGGEST_POPULAR_MIN_SEARCHES": env.integer(
            "SHOPAI_SUGGEST_POPULAR_MIN_SEARCHES", 3, minimum=1
        ),
        "SHOPAI_SUGGEST_RECHECK_SECONDS": env.number("SHOPAI_SUGGEST_RECHECK_SECONDS", 2.0),
        # The shop assistant (shopai.assistant): per-client and per-session message
        # rates, token budgets per conversation and per day, the reply's length, open
        # streams per process (keep it below the web server's threads), and how long
        # conversations are kept.
        "SHOPAI_CHAT_RATE_LIMIT": _rate_limit(
            env, "SHOPAI_CHAT_RATE_LIMIT", "20 per minute;300 per day"
        ),
        "SHOPAI_CHAT_SESSION_RATE_LIMIT": _rate_limit(
            env, "SHOPAI_CHAT_SESSION_RATE_LIMIT", "10 per minute"
        ),
        "SHOPAI_CHAT_MAX_MESSAGE_CHARS": env.integer(
            "SHOPAI_CHAT_MAX_MESSAGE_CHARS", 1000, minimum=1
        ),
        "SHOPAI_CHAT_CONVERSATION_TOKENS": env.integer(
            "SHOPAI_CHAT_CONVERSATION_TOKENS", 30_000, minimum=1
        ),
        "SHOPAI_CHAT_DAILY_TOKENS": env.integer("SHOPAI_CHAT_DAILY_TOKENS", 2_000_000),
        "SHOPAI_CHAT_MAX_REPLY_TOKENS": env.integer(
            "SHOPAI_CHAT_MAX_REPLY_TOKENS", 300, minimum=16
        ),
        "SHOPAI_CHAT_MAX_STREAMS": env.integer("SHOPAI_CHAT_MAX_STREAMS", 8, minimum=1),
        "SHOPAI_CHAT_PROMPT_PRODUCTS": env.integer("SHOPAI_CHAT_PROMPT_PRODUCTS", 0, minimum=0),
        "SHOPAI_CHAT_RETENTION_DAYS": env.integer("SHOPAI_CHAT_RETENTION_DAYS", 30, minimum=1),
        # Generated product images (shopai.images.generation): images per UTC day (all
        # backends but the offline renderer count), requests per admin, the size asked for.
        "SHOPAI_IMAGES_DAILY_LIMIT": env.integer("SHOPAI_IMAGES_DAILY_LIMIT", 200),
        "SHOPAI_IMAGES_RATE_LIMIT": _rate_limit(env, "SHOPAI_IMAGES_RATE_LIMIT", "30 per hour"),
        "SHOPAI_IMAGES_SIZE": _image_size(env),
        # Background jobs (shopai.jobs): the queue, in-process consumer threads, leases.
        "REDIS_URL": redis_url,
        "SHOPAI_WEB_WORKERS": env.integer("SHOPAI_WEB_WORKERS", 0 if redis_url else 2),
        "SHOPAI_JOB_LEASE_SECONDS": env.number("SHOPAI_JOB_LEASE_SECONDS", 120.0, minimum=1.0),
        "SHOPAI_JOB_RETRY_BASE_SECONDS": env.number("SHOPAI_JOB_RETRY_BASE_SECONDS", 10.0),
        "SHOPAI_JOB_RETRY_MAX_SECONDS": env.number("SHOPAI_JOB_RETRY_MAX_SECONDS", 3600.0),
        "WTF_CSRF_TIME_LIMIT": None,
        # `shopai serve`: gunicorn workers and threads, job worker processes.
        **serve_settings(env),
    }
