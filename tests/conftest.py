"""Fixtures in the style of the Flask tutorial: `app`, `client`, `runner`, plus factories."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import Pool

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client
from shopai.auth.models import User
from shopai.auth.services import create_admin
from shopai.background import flush_all
from shopai.extensions import db

from .factories import ADMIN_EMAIL, ADMIN_PASSWORD
from .integration.postgres import PostgresServer
from .integration.redis_server import RedisServer, RedisServerError

TEST_SECRET_KEY = "test-secret-key-0123456789"


def _on_postgres() -> bool:
    return os.environ.get("SHOPAI_TEST_DATABASE", "sqlite") == "postgresql"


def pytest_configure(config: pytest.Config) -> None:
    database = os.environ.get("SHOPAI_TEST_DATABASE", "sqlite")
    if database not in ("sqlite", "postgresql"):
        raise pytest.UsageError("SHOPAI_TEST_DATABASE must be sqlite or postgresql")


def _with_redis() -> bool:
    """`SHOPAI_TEST_REDIS=1`: every app of the suite gets REDIS_URL, as production does
    (job queue, rate limits, shared caches on one real, emptied Redis)."""
    return os.environ.get("SHOPAI_TEST_REDIS", "") == "1"


def pytest_report_header() -> str:
    database = os.environ.get("SHOPAI_TEST_DATABASE", "sqlite")
    return f"database: {database}" + (", with Redis" if _with_redis() else "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`@pytest.mark.sqlite_only("why")`: skipped, with that reason, on PostgreSQL;
    `@pytest.mark.without_redis("why")`: skipped, with that reason, with Redis."""
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None and _on_postgres():
            reason = marker.args[0] if marker.args else "tests SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        marker = item.get_closest_marker("without_redis")
        if marker is not None and _with_redis():
            reason = marker.args[0] if marker.args else "tests the in-process job queue"
            item.add_marker(pytest.mark.skip(reason=f"without Redis only: {reason}"))


class DatabaseCopies:
    """Where each test's database comes from: a migrated template, copied per test.

    SQLite: the template is a file, copied. PostgreSQL (`SHOPAI_TEST_DATABASE=postgresql`):
    a server started for the session (or the one `SHOPAI_TEST_POSTGRES_URL` names), a
    migrated template database, and `CREATE DATABASE ... TEMPLATE` per test, dropped after.
    """

    def __init__(self, template: Path, server: PostgresServer | None) -> None:
        self.template = template
        self.server = server
        self._count = itertools.count()

    @property
    def dialect(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    def create(self, instance: Path) -> str:
        if self.server is None:
            database = instance / "shopai.db"
            shutil.copyfile(self.template, database)
            return f"sqlite:///{database}"
        name = f"shopai_test_{os.getpid()}_{next(self._count)}"
        self.server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{POSTGRES_TEMPLATE}"')
        return self.server.url(name)

    def drop(self, uri: str) -> None:
        if self.server is not None:
            name = make_url(uri).database
            self.server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


POSTGRES_TEMPLATE = "shopai_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL server, or None on SQLite."""
    if not _on_postgres():
        yield None
        return
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_copies(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer | None
) -> DatabaseCopies:
    """Run the real migrations once, into the template every test's database copies."""
    instance = tmp_path_factory.mktemp("template")
    path = instance / "shopai.db"
    uri = f"sqlite:///{path}"
    if postgres_server is not None:
        postgres_server.execute(f'CREATE DATABASE "{POSTGRES_TEMPLATE}"')
        uri = postgres_server.url(POSTGRES_TEMPLATE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHOPAI_ENV", "testing")
        mp.setenv("SECRET_KEY", TEST_SECRET_KEY)
        mp.setenv("SHOPAI_INSTANCE_PATH", str(instance))
        app = create_app(_test_config(instance, uri))
        with app.app_context():
            upgrade()
            db.engine.dispose()
    return DatabaseCopies(path, postgres_server)


def _test_config(instance: Path, database_uri: str) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "SHOPAI_UPLOAD_DIR": str(instance / "uploads"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        # The embedded default, whatever the developer's shell exports; started only if used.
        "SHOPAI_AI": AISettings.from_env({}),
        # No in-process job consumer unless a test starts one (tests/jobs/).
        "SHOPAI_WEB_WORKERS": 0,
    }


@pytest.fixture
def database_uri(tmp_path: Path, database_copies: DatabaseCopies) -> Iterator[str]:
    """A fresh, migrated database for this test (a copy of the template).

    On PostgreSQL, every connection the test opened is closed before the database is
    dropped: apps a test builds for itself are never disposed, and psycopg warns when a
    connection is collected open (SQLite's driver does not)."""
    uri = database_copies.create(tmp_path)
    opened: list[Any] = []

    def remember(dbapi_connection: Any, _record: Any) -> None:
        opened.append(dbapi_connection)

    if database_copies.dialect == "postgresql":
        event.listen(Pool, "connect", remember)
    try:
        yield uri
    finally:
        if database_copies.dialect == "postgresql":
            event.remove(Pool, "connect", remember)
            for connection in opened:
                connection.close()
        database_copies.drop(uri)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real `redis-server` per session, started by the first test that needs it."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def app_config(
    tmp_path: Path,
    database_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> dict:
    if _with_redis():
        redis_server = request.getfixturevalue("redis_server")
        redis_server.flush()
        monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHOPAI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SHOPAI_ENV", "testing")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    return _test_config(tmp_path, database_uri)


@pytest.fixture
def app(app_config: dict) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        yield app
        flush_all()  # searches counted in the background, before the database goes
        ai_client().close()  # kept-alive connections, not left to the garbage collector
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
