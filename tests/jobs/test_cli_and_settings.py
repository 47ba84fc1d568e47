"""`shopai jobs ...`, `shopai worker` arguments, and the job settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopai.config import ConfigError, load_settings
from shopai.jobs import JobStatus, enqueue, execute_job

from .conftest import fresh


def test_jobs_list_retry_cancel(runner, app, clock):
    failed = enqueue("test.permanent")
    execute_job(failed.id)
    queued = enqueue("test.noop")

    listing = runner.invoke(args=["jobs", "list"]).output
    assert "failed" in listing and "product 5 no longer exists" in listing
    assert "queued" in listing and "test.noop" in listing
    only_failed = runner.invoke(args=["jobs", "list", "--status", "failed"]).output
    assert "test.noop" not in only_failed

    assert runner.invoke(args=["jobs", "retry", str(failed.id)]).exit_code == 0
    assert fresh(failed.id).status == JobStatus.QUEUED
    refused = runner.invoke(args=["jobs", "retry", str(queued.id)])
    assert refused.exit_code == 1 and "only failed or cancelled" in refused.output
    assert runner.invoke(args=["jobs", "retry", "999"]).exit_code == 1
    assert runner.invoke(args=["jobs", "cancel", str(queued.id)]).exit_code == 0
    assert fresh(queued.id).status == JobStatus.CANCELLED
    assert "Re-queued 0" in runner.invoke(args=["jobs", "sweep"]).output


def test_jobs_list_when_empty(runner, app):
    assert runner.invoke(args=["jobs", "list"]).output == "No jobs.\n"


def test_worker_refuses_a_module_it_cannot_import(runner, app):
    result = runner.invoke(args=["worker", "--import", "tests.jobs.no_such_module"])
    assert result.exit_code == 2 and "cannot import tests.jobs.no_such_module" in result.output


PRODUCTION = {"SECRET_KEY": "x" * 32, "SHOPAI_TRUSTED_HOSTS": "shop.example.com"}


def test_sqlite_queue_by_default_with_web_threads(tmp_path: Path):
    settings = load_settings(str(tmp_path), PRODUCTION)
    assert settings["REDIS_URL"] is None and settings["SHOPAI_WEB_WORKERS"] == 2
    assert settings["SHOPAI_JOB_LEASE_SECONDS"] == 120


def test_redis_means_separate_workers(tmp_path: Path):
    settings = load_settings(str(tmp_path), {**PRODUCTION, "REDIS_URL": "redis://cache:6379/1"})
    assert settings["REDIS_URL"] == "redis://cache:6379/1"
    assert settings["SHOPAI_WEB_WORKERS"] == 0
    both = load_settings(
        str(tmp_path), {**PRODUCTION, "REDIS_URL": "rediss://h:6380/0", "SHOPAI_WEB_WORKERS": "1"}
    )
    assert both["SHOPAI_WEB_WORKERS"] == 1


@pytest.mark.parametrize(
    "url", ["http://cache:6379", "cache:6379", "redis://:hunter2@cache:port/0", "redis://"]
)
def test_a_malformed_redis_url_stops_the_shop_without_echoing_it(tmp_path: Path, url: str):
    with pytest.raises(ConfigError, match="REDIS_URL") as error:
        load_settings(str(tmp_path), {**PRODUCTION, "REDIS_URL": url})
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHOPAI_WEB_WORKERS", "-1"),
        ("SHOPAI_JOB_LEASE_SECONDS", "0.5"),
        ("SHOPAI_WEB_WORKERS", "two"),
    ],
)
def test_job_settings_are_validated(tmp_path: Path, name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        load_settings(str(tmp_path), {**PRODUCTION, name: value})
