"""/admin/jobs and the JSON endpoints: admin only, CSRF on every change."""

from __future__ import annotations

import pytest
from flask import Flask

from shopai import create_app
from shopai.auth.models import User
from shopai.extensions import db
from shopai.jobs import JobStatus, enqueue, execute_job

from ..factories import csrf_token_from
from .conftest import fresh


def shopper_client(app: Flask):
    """A signed-in non-admin. Made after the anonymous requests of a test: the test's
    app context (and so Flask-Login's cached user) outlives each request."""
    user = User(email="shopper@example.com", is_admin=False)
    user.set_password("a long enough password")
    db.session.add(user)
    db.session.commit()
    client = app.test_client()
    client.post("/login", data={"email": user.email, "password": "a long enough password"})
    return client


def test_the_jobs_page_needs_an_admin(app, client):
    anonymous = client.get("/admin/jobs")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    assert client.post("/admin/jobs/1/retry").status_code == 302
    shopper = shopper_client(app)
    assert shopper.get("/admin/jobs").status_code == 403
    assert shopper.post("/admin/jobs/1/cancel").status_code == 403


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/jobs"),
        ("get", "/api/jobs/1"),
        ("post", "/api/jobs/1/retry"),
        ("post", "/api/jobs/1/cancel"),
    ],
)
def test_the_json_endpoints_answer_401_and_403_in_json(app, client, method, url):
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == 401
    forbidden = getattr(shopper_client(app), method)(url)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"]["code"] == 403


def test_the_page_lists_filters_and_links(admin_client, clock):
    failed = enqueue("test.permanent")
    execute_job(failed.id)
    enqueue("test.noop", {"secret_looking": "payload stays off the page"})

    page = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert 'href="/admin/jobs"' in admin_client.get("/admin/").get_data(as_text=True)
    assert "PermanentJobError: product 5 no longer exists" in page
    assert f'data-job-id="{failed.id}"' in page
    assert "payload stays off the page" not in page
    assert "<script>" not in page and " style=" not in page  # the CSP allows neither
    assert 'src="/static/js/jobs.js"' in page

    only_failed = admin_client.get("/admin/jobs?status=failed").get_data(as_text=True)
    assert only_failed.count("<tr data-job-id=") == 1 + 1  # the row and the <template> row
    only_noop = admin_client.get("/admin/jobs?kind=test.noop&status=nonsense").get_data(
        as_text=True
    )
    assert f'data-job-id="{failed.id}"' not in only_noop
    assert 'data-poll-url="/api/jobs?kind=test.noop"' in only_noop


def test_markup_in_job_data_is_escaped(admin_client, clock):
    job = enqueue("test.fail", {"message": "<img src=x onerror=alert(1)>"}, max_attempts=1)
    execute_job(job.id)
    page = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_json_job_and_listing(admin_client, clock):
    job = enqueue("test.noop", {"product_id": 7}, key="embed:7")
    listing = admin_client.get("/api/jobs?status=queued").get_json()
    assert [item["id"] for item in listing["items"]] == [job.id]
    assert "payload" not in listing["items"][0]
    detail = admin_client.get(f"/api/jobs/{job.id}").get_json()
    assert detail["payload"] == {"product_id": 7}
    assert detail["status"] == "queued" and detail["idempotency_key"] == "embed:7"
    assert detail["created_at"].endswith("Z") and detail["can_cancel"] and not detail["can_retry"]
    missing = admin_client.get("/api/jobs/999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == 404


def test_retry_and_cancel_through_forms_and_json(admin_client, clock):
    job = enqueue("test.noop")
    response = admin_client.post(f"/admin/jobs/{job.id}/cancel", data={"status": "queued"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/jobs?status=queued"
    assert fresh(job.id).status == JobStatus.CANCELLED

    again = admin_client.post(f"/api/jobs/{job.id}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == 409
    retried = admin_client.post(f"/api/jobs/{job.id}/retry")
    assert retried.status_code == 200 and retried.get_json()["status"] == "queued"
    assert admin_client.post(f"/api/jobs/{job.id}/retry").status_code == 409
    assert admin_client.post("/admin/jobs/999/retry").status_code == 404

    page = admin_client.post(f"/admin/jobs/{job.id}/retry", follow_redirects=True)
    assert "cannot be retried" in page.get_data(as_text=True)


@pytest.fixture
def protected_app(app_config: dict):
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_retry_and_cancel_need_the_csrf_token(protected_app: Flask):
    from shopai.auth.services import create_admin

    from ..factories import ADMIN_EMAIL, ADMIN_PASSWORD

    create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    client = protected_app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    token = csrf_token_from(client.get("/admin/jobs").get_data(as_text=True))
    job = enqueue("test.noop")

    assert client.post(f"/admin/jobs/{job.id}/cancel").status_code == 400
    refused = client.post(f"/api/jobs/{job.id}/cancel")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == 400
    assert fresh(job.id).status == JobStatus.QUEUED

    accepted = client.post(f"/api/jobs/{job.id}/cancel", headers={"X-CSRFToken": token})
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "cancelled"
    form = client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": token})
    assert form.status_code == 302 and fresh(job.id).status == JobStatus.QUEUED


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/admin/jobs/{id}/retry"),
        ("post", "/admin/jobs/{id}/cancel"),
        ("get", "/api/jobs/{id}"),
        ("post", "/api/jobs/{id}/retry"),
        ("post", "/api/jobs/{id}/cancel"),
    ],
)
def test_a_job_id_too_large_for_the_database_is_not_found(admin_client, method, url):
    """Not an OverflowError from the database driver (a 500)."""
    for job_id in ("9" * 19, "9" * 40, str(2**63)):
        response = getattr(admin_client, method)(url.format(id=job_id))
        assert response.status_code == 404
