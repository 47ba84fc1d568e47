from pathlib import Path

import pytest

from shopai.config import ConfigError, load_settings


def test_production_requires_a_secret_key(tmp_path: Path):
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        load_settings(str(tmp_path), {"SHOPAI_ENV": "production"})


def test_production_refuses_a_short_secret_key(tmp_path: Path):
    with pytest.raises(ConfigError, match="at least 16"):
        load_settings(str(tmp_path), {"SECRET_KEY": "short"})


def test_development_generates_and_keeps_a_local_key(tmp_path: Path):
    first = load_settings(str(tmp_path), {"SHOPAI_ENV": "development"})["SECRET_KEY"]
    again = load_settings(str(tmp_path), {"SHOPAI_ENV": "development"})["SECRET_KEY"]
    assert first == again and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


PRODUCTION = {"SECRET_KEY": "x" * 32, "SHOPAI_TRUSTED_HOSTS": "shop.example.com"}


def test_defaults_are_safe(tmp_path: Path):
    settings = load_settings(str(tmp_path), PRODUCTION)
    assert "DEBUG" not in settings  # Flask's default: off
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'shopai.db'}"
    assert settings["SHOPAI_UPLOAD_DIR"] == str(tmp_path / "uploads")
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["MAX_CONTENT_LENGTH"] == 8 * 1024 * 1024


def test_https_marks_cookies_secure(tmp_path: Path):
    settings = load_settings(str(tmp_path), {**PRODUCTION, "SHOPAI_HTTPS": "true"})
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["REMEMBER_COOKIE_SECURE"] is True


def test_testing_needs_a_secret_key_too(tmp_path: Path):
    with pytest.raises(ConfigError, match="SHOPAI_ENV=testing"):
        load_settings(str(tmp_path), {"SHOPAI_ENV": "testing"})


def test_debug_mode_is_refused_outside_development(tmp_path: Path, monkeypatch):
    from shopai import create_app

    monkeypatch.setenv("SHOPAI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("SHOPAI_TRUSTED_HOSTS", "shop.example.com")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("SHOPAI_ENV", "production")
    with pytest.raises(ConfigError, match="debug mode"):
        create_app()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SHOPAI_ENV", "staging", "SHOPAI_ENV must be one of"),
        ("SHOPAI_MAX_UPLOAD_MB", "lots", "SHOPAI_MAX_UPLOAD_MB must be an integer"),
        ("SHOPAI_PER_PAGE", "0", "SHOPAI_PER_PAGE must be at least 1"),
        ("SHOPAI_HTTPS", "maybe", "SHOPAI_HTTPS must be true or false"),
        ("SHOPAI_LOGIN_RATE_LIMIT", "banana", "must look like '10 per minute'"),
        ("DATABASE_URL", "not a url", "DATABASE_URL is not a database URL"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path: Path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(str(tmp_path), {**PRODUCTION, name: value})


@pytest.mark.parametrize(
    "url",
    ["postgres://u:p@db/shop", "postgresql://u:p@db/shop", "postgresql+psycopg://u:p@db/shop"],
)
def test_postgres_urls_use_psycopg_3(tmp_path: Path, url: str):
    settings = load_settings(str(tmp_path), {**PRODUCTION, "DATABASE_URL": url})
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db/shop"


def test_other_postgres_drivers_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="psycopg 3"):
        load_settings(
            str(tmp_path), {**PRODUCTION, "DATABASE_URL": "postgresql+psycopg2://u:p@db/shop"}
        )


def test_passwords_with_url_escapes_survive(tmp_path: Path):
    url = "postgresql://shop:p%40ss%2Fword@db:5433/shop?sslmode=require"
    settings = load_settings(str(tmp_path), {**PRODUCTION, "DATABASE_URL": url})
    assert settings["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://shop:p%40ss%2Fword@db:5433/shop?sslmode=require"
    )


def test_production_needs_the_host_names_it_serves(tmp_path: Path):
    with pytest.raises(ConfigError, match="SHOPAI_TRUSTED_HOSTS is required in production"):
        load_settings(str(tmp_path), {"SECRET_KEY": "x" * 32})
    assert load_settings(str(tmp_path), PRODUCTION)["TRUSTED_HOSTS"] == ["shop.example.com"]


@pytest.mark.parametrize("value", ["on", "yes", "1", "true", "TRUE"])
def test_the_app_and_the_ai_client_read_flags_alike(tmp_path: Path, value):
    """`SHOPAI_HTTPS=on` worked while `SHOPAI_ALLOW_PRIVATE_IMAGE_URLS=on` was an error."""
    settings = load_settings(
        str(tmp_path),
        {**PRODUCTION, "SHOPAI_HTTPS": value, "SHOPAI_ALLOW_PRIVATE_IMAGE_URLS": value},
    )
    assert settings["SHOPAI_HTTPS"] is True
    assert settings["SHOPAI_AI"].allow_private_urls is True


@pytest.mark.parametrize(
    "hosts", ["https://shop.example.com", "shop.example.com/", "[::1]", "u@shop.example.com"]
)
def test_trusted_hosts_are_names_not_urls(tmp_path: Path, hosts):
    with pytest.raises(ConfigError, match="SHOPAI_TRUSTED_HOSTS holds"):
        load_settings(str(tmp_path), {**PRODUCTION, "SHOPAI_TRUSTED_HOSTS": hosts})


def test_trusted_hosts_are_compared_in_lowercase(tmp_path: Path):
    settings = load_settings(
        str(tmp_path), {**PRODUCTION, "SHOPAI_TRUSTED_HOSTS": "Shop.Example.com, .CDN.example"}
    )
    assert settings["TRUSTED_HOSTS"] == ["shop.example.com", ".cdn.example"]
