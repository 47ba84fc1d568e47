"""Fixtures in the style of the Flask tutorial: `app`, `client`, `runner`, plus factories."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.auth.models import User
from shopai.auth.services import create_admin
from shopai.background import flush_all
from shopai.extensions import db

from .factories import ADMIN_EMAIL, ADMIN_PASSWORD

TEST_SECRET_KEY = "test-secret-key-0123456789"


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the real migrations once; each test gets a copy of the resulting file."""
    path = tmp_path_factory.mktemp("template") / "shopai.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHOPAI_ENV", "testing")
        mp.setenv("SECRET_KEY", TEST_SECRET_KEY)
        mp.setenv("SHOPAI_INSTANCE_PATH", str(path.parent))
        app = create_app(_test_config(path.parent, path))
        with app.app_context():
            upgrade()
            db.engine.dispose()
    return path


def _test_config(instance: Path, database: Path) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "SHOPAI_UPLOAD_DIR": str(instance / "uploads"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        # The embedded default, whatever the developer's shell exports; started only if used.
        "SHOPAI_AI": AISettings.from_env({}),
        # No in-process job consumer unless a test starts one (tests/jobs/).
        "SHOPAI_WEB_WORKERS": 0,
    }


@pytest.fixture
def app_config(tmp_path: Path, migrated_db: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SHOPAI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SHOPAI_ENV", "testing")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    database = tmp_path / "shopai.db"
    shutil.copyfile(migrated_db, database)
    return _test_config(tmp_path, database)


@pytest.fixture
def app(app_config: dict) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        yield app
        flush_all()  # searches counted in the background, before the database goes
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def background_writes_done() -> Iterator[None]:
    """Rows written off the request (searches counted, AI usage) land within the test
    that made them, never during a later one (apps a test built itself included)."""
    yield
    assert flush_all()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def admin(app: Flask) -> User:
    return create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def admin_client(client: FlaskClient, admin: User) -> FlaskClient:
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    return client
