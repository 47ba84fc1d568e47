"""Defects the API fuzzing (schemathesis, tests/ops/test_schemathesis.py) found."""

from __future__ import annotations


def test_rating_a_message_id_beyond_the_database_integers_is_a_404(client):
    response = client.post("/api/chat/messages/99999999999999999999/rating", json={"rating": 1})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404


# PostgreSQL's INTEGER stops at 2**31 - 1 (SQLite's at 2**63 - 1): a larger id in a
# path reached the database there and failed with a 500 (found by the fuzzing on
# PostgreSQL + Redis).
PAST_THE_LARGEST_ID = str(2**31)


def test_ids_past_postgresqls_integers_are_404s_everywhere(admin_client):
    for path in (
        f"/api/products/{PAST_THE_LARGEST_ID}",
        f"/api/jobs/{PAST_THE_LARGEST_ID}",
        f"/product/{PAST_THE_LARGEST_ID}",
        f"/category/{PAST_THE_LARGEST_ID}",
        f"/admin/products/{PAST_THE_LARGEST_ID}/edit",
        f"/admin/products/{PAST_THE_LARGEST_ID}/images",
    ):
        assert admin_client.get(path).status_code == 404, path
    for path in (
        f"/api/jobs/{PAST_THE_LARGEST_ID}/cancel",
        f"/api/chat/messages/{PAST_THE_LARGEST_ID}/rating",
    ):
        assert admin_client.post(path, json={"rating": 1}).status_code == 404, path
