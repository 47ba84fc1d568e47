"""Schemathesis against /api/openapi.json of a shop served on a real socket.

The shop runs as in production but for its model backend, the fake OpenAI server
(tests/fakes/openai_server.py), and rate limits, which are off so that fuzzing
reaches the views instead of 429s. CSRF stays on: the fuzzer signs in as an admin
through the real login form and sends that session's cookie and CSRF token with
every request (the document's `session` and `csrf` security schemes), so POSTs
are checked past the token and the admin-only job endpoints past the sign-in.

Checks: no 5xx on any generated input (valid or not), and every response's status,
content type and body as the document describes. Bounded (`MAX_EXAMPLES` per
operation, a fixed seed) to keep `make test` quick.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from shopai import create_app
from shopai.ai.settings import AISettings
from shopai.ai_service import ai_client, flush_usage
from shopai.auth.services import create_admin
from shopai.extensions import db
from shopai.jobs import Job
from shopai.search.embeddings import refresh_embeddings

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD, make_category, make_product
from ..fakes.openai_server import FakeOpenAI

MAX_EXAMPLES = int(os.environ.get("SHOPAI_FUZZ_EXAMPLES", "15"))
SEED = 20261130
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)
TIMEOUT_SECONDS = 600


@pytest.fixture
def fake_ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fuzzed_shop(app_config: dict, fake_ai: FakeOpenAI) -> Iterator[Flask]:
    settings = AISettings.from_env(
        {
            "OPENAI_BASE_URL": fake_ai.base_url,
            "SHOPAI_EMBEDDING_BACKEND": "api",
            "SHOPAI_CHAT_TIMEOUT": "5",
            "SHOPAI_SUGGEST_TIMEOUT": "2",
        }
    )
    app = create_app({**app_config, "SHOPAI_AI": settings, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        _seed()
        yield app
        flush_usage()
        ai_client().close()
        db.session.remove()
        db.engine.dispose()


def _seed() -> None:
    headphones = make_category("Headphones")
    make_product("Kestrel K7 Wireless Headphones", "199.00", headphones)
    make_product("Kestrel Buds Mini", "59.00", headphones, "Tiny earbuds.")
    make_product("Norvik AirLite 13 Laptop", "999.00", make_category("Laptops"))
    refresh_embeddings()
    db.session.add_all(
        [
            Job(kind="demo.fuzz", status="failed", attempts=5, last_error="boom"),
            Job(kind="demo.fuzz", status="queued"),
        ]
    )
    db.session.commit()
    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def live_url(fuzzed_shop: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, fuzzed_shop, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def _admin_session(base: str) -> tuple[str, str]:
    """Sign in through the real form; the session cookie and its CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/csrf-token") as response:
        token = json.load(response)["csrf_token"]
    form = urllib.parse.urlencode(
        {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    ).encode()
    with opener.open(f"{base}/login", data=form) as response:
        assert response.status == 200  # the redirect to the shop, followed
    with opener.open(f"{base}/api/chat") as response:
        assert response.status == 200  # the session's assistant owner: its answers can be rated
    with opener.open(f"{base}/csrf-token") as response:
        token = json.load(response)["csrf_token"]
    cookie = next(c for c in jar if c.name == "session")
    assert cookie.value
    return cookie.value, token


def test_the_api_survives_generated_input_and_answers_as_documented(
    live_url: str, fake_ai: FakeOpenAI, tmp_path: Path
) -> None:
    session, token = _admin_session(live_url)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{live_url}/api/openapi.json",
        "--url",
        live_url,
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--header",
        f"Cookie: session={session}",
        "--header",
        f"X-CSRFToken: {token}",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    result = subprocess.run(  # noqa: S603 - our own command line
        command,
        cwd=tmp_path,  # hypothesis keeps its example database here
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        check=False,
    )
    output = result.stdout + result.stderr
    print(output[-6000:])
    (Path(os.environ.get("SHOPAI_FUZZ_LOG", tmp_path / "fuzz.log"))).write_text(output)
    assert result.returncode == 0, output[-20000:]
    # Past CSRF and validation: generated questions reached the model.
    assert fake_ai.requests_to("/chat/completions")
