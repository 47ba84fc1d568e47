"""The live jobs page: rows change state while the page stays loaded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from shopai.jobs import JobRuntime, enqueue, jobs_runtime

from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD
from ..jobs import handlers  # noqa: F401 - registers the test.* job kinds

pytestmark = pytest.mark.browser

# Bounds for state changes that go through a real consumer; not durations under test.
CHANGE = 20_000


@pytest.fixture
def jobs(app: Flask, admin) -> Iterator[JobRuntime]:
    runtime = jobs_runtime(app)
    yield runtime
    runtime.close()


def test_admin_watches_jobs_change_state_without_a_reload(
    page: Page, jobs: JobRuntime, tmp_path: Path
):
    first = enqueue("test.gate", {"dir": str(tmp_path), "answer": 1})

    page.goto("/admin/jobs")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    row = page.locator(f'tr[data-job-id="{first.id}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("queued")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads

    jobs.start_consumer(threads=2)
    expect(row.locator('[data-field="status"]')).to_have_text("running", timeout=CHANGE)
    expect(row.locator('[data-field="progress"]')).to_have_text("0/1 waiting for release")
    expect(row.get_by_role("button", name=f"Cancel job {first.id}")).to_be_visible()

    (tmp_path / "release").touch()
    expect(row.locator('[data-field="status"]')).to_have_text("succeeded", timeout=CHANGE)
    expect(row.locator('[data-field="progress"]')).to_have_text("1/1 done")
    expect(row.locator('[data-field="finished_at"]')).to_have_text(re.compile(r"^\d{4}-.* UTC$"))
    expect(row.get_by_role("button", name=f"Cancel job {first.id}")).to_be_hidden()

    # A job that appears while the page is open gets a row; its Cancel button works.
    (tmp_path / "release").unlink()
    second = enqueue("test.gate", {"dir": str(tmp_path)}, max_attempts=1)
    new_row = page.locator(f'tr[data-job-id="{second.id}"]')
    expect(new_row.locator('[data-field="status"]')).to_have_text("running", timeout=CHANGE)
    expect(page.locator("#jobs-table tbody tr").first).to_have_attribute(
        "data-job-id", str(second.id)
    )
    new_row.get_by_role("button", name=f"Cancel job {second.id}").click()
    expect(new_row.locator('[data-field="status"]')).to_have_text("cancelled", timeout=CHANGE)
    expect(new_row.get_by_role("button", name=f"Retry job {second.id}")).to_be_visible()

    assert page.evaluate("() => window.sameDocument") is True
    assert page.url.endswith("/admin/jobs")
