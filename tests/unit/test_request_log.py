"""Log lines: one format set up by create_app, a request id on each, no secrets."""

from __future__ import annotations

import pytest

from shopai import create_app
from shopai.request_log import redact


@pytest.fixture
def logging_app(app_config):
    app = create_app(app_config)

    @app.get("/log-something")
    def log_something() -> str:
        app.logger.warning("calling https://u:hunter22@llm.internal/v1 with sk-abcdefghijklmnop")
        return "ok"

    return app


def test_every_line_of_a_request_carries_its_id(capsys, logging_app):
    response = logging_app.test_client().get("/log-something")
    request_id = response.headers["X-Request-ID"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "shopai" in line]
    assert any("WARNING" in line for line in lines)
    assert all(f"[{request_id}]" in line for line in lines), lines
    assert any(f"[{request_id}] shopai.access: GET /log-something 200" in line for line in lines)


def test_a_proxy_request_id_is_kept_and_a_malformed_one_replaced(logging_app):
    client = logging_app.test_client()
    kept = client.get("/", headers={"X-Request-ID": "edge-1234abcd"})
    assert kept.headers["X-Request-ID"] == "edge-1234abcd"
    replaced = client.get("/", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert replaced.headers["X-Request-ID"].isalnum()


def test_secrets_never_reach_the_log(capsys, logging_app):
    logging_app.test_client().get("/log-something")
    err = capsys.readouterr().err
    assert "hunter22" not in err and "abcdefghijklmnop" not in err
    assert "sk-***" in err


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
        ("POST /login password=hunter22&email=a@b.c", "hunter22"),
        ("postgresql://shop:s3cr3t@db/shop", "s3cr3t"),
    ],
)
def test_redaction(text, hidden):
    assert hidden not in redact(text)
