"""/admin/usage: admin only, a bar per day and feature, a table, keyboard-usable filters."""

from __future__ import annotations

import re
from datetime import timedelta

from shopai.auth.models import User
from shopai.db_types import utcnow
from shopai.extensions import db
from shopai.security import CONTENT_SECURITY_POLICY

from .test_usage_report import record


def _seed() -> None:
    now = utcnow()
    record("chat", now, prompt=120, completion=80, cost=1_500)
    record("chat", now - timedelta(days=1), prompt=60, completion=40, cost=700)
    record("suggest", now, prompt=30, completion=10, cost=20)
    db.session.commit()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/usage")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_shoppers_who_are_not_admins_get_403(app, client):
    user = User(email="shopper@example.com", is_admin=False)
    user.set_password("a long enough password")
    db.session.add(user)
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": "a long enough password"})
    assert client.get("/admin/usage").status_code == 403


def test_the_page_draws_a_bar_segment_per_feature_and_day(admin_client):
    _seed()
    response = admin_client.get("/admin/usage")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<svg id="usage-chart"' in html and 'role="img"' in html
    bars = re.findall(r'<rect x="[\d.]+" y="[\d.]+" [^>]*data-feature="(\w+)"', html)
    assert sorted(bars) == ["chat", "chat", "suggest"]
    assert "style=" not in html.split('<svg id="usage-chart"')[1].split("</svg>")[0]
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert 'id="usage-table"' in html and 'id="usage-totals"' in html
    assert "4 calls" not in html and "3 calls (0 failed)" in html
    assert "$0.00" in html  # 2,220 micro-dollars, rounded for the summary


def test_metric_tabs_and_feature_filter_are_links(admin_client):
    _seed()
    html = admin_client.get("/admin/usage?metric=tokens&feature=chat").get_data(as_text=True)
    assert 'aria-current=page href="/admin/usage?metric=tokens&amp;feature=chat"' in html.replace(
        "\n      ", " "
    )
    bars = re.findall(r'data-feature="(\w+)"', html)
    assert set(bars) == {"chat"}
    assert "Assistant: 200 tokens" in html
    table = html.split('id="usage-table"')[1].split("</table>")[0]
    assert "Search suggestions" not in table


def test_unknown_parameters_fall_back_to_the_defaults(admin_client):
    _seed()
    response = admin_client.get("/admin/usage?metric=<x>&feature=nope")
    assert response.status_code == 200
    assert len(re.findall(r"<rect x=", response.get_data(as_text=True))) == 3


def test_an_empty_ledger_says_so(admin_client):
    html = admin_client.get("/admin/usage").get_data(as_text=True)
    assert 'id="usage-empty"' in html
    assert "<svg id=" not in html


def test_the_admin_nav_links_to_the_page(admin_client):
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/usage"' in html
