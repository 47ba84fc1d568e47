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


@pytest.fixture
def json_logging_app(app_config):
    app = create_app({**app_config, "SHOPAI_LOG_FORMAT": "json"})

    @app.get("/log-something")
    def log_something() -> str:
        app.logger.warning("calling https://u:hunter22@llm.internal/v1 with sk-abcdefghijklmnop")
        return "ok"

    @app.get("/fail")
    def fail() -> str:
        try:
            raise ValueError("token=abcdef123456 leaked")
        except ValueError:
            app.logger.exception("it failed")
        return "handled"

    return app


def _json_lines(err: str) -> list[dict]:
    import json

    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_json_lines_carry_the_request_id_and_access_fields(capsys, json_logging_app):
    response = json_logging_app.test_client().get("/log-something?password=hunter22")
    request_id = response.headers["X-Request-ID"]
    err = capsys.readouterr().err
    lines = _json_lines(err)
    assert len(lines) == len([line for line in err.splitlines() if line.strip()])
    warning, access = lines
    assert warning["level"] == "WARNING" and warning["logger"] == "shopai"
    assert warning["request_id"] == request_id
    assert "sk-***" in warning["message"] and "hunter22" not in err
    assert warning["time"].endswith("+00:00")
    assert access["logger"] == "shopai.access"
    assert access["request_id"] == request_id
    assert access["method"] == "GET"
    assert access["path"] == "/log-something"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)


def test_json_exceptions_are_redacted(capsys, json_logging_app):
    json_logging_app.test_client().get("/fail")
    err = capsys.readouterr().err
    (failure,) = [line for line in _json_lines(err) if line["message"] == "it failed"]
    assert "ValueError" in failure["exception"]
    assert "abcdef123456" not in err


def test_lines_outside_a_request_have_no_request_id(capsys, json_logging_app):
    import logging

    logging.getLogger("shopai.test").warning("started")
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["request_id"] == "-"
    assert "method" not in line


def test_the_log_format_is_checked_at_start_up():
    from shopai.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="SHOPAI_LOG_FORMAT"):
        load_settings(
            "/tmp/x", {"SHOPAI_ENV": "testing", "SECRET_KEY": "k", "SHOPAI_LOG_FORMAT": "xml"}
        )
