"""Defects the API fuzzing (schemathesis, tests/ops/test_schemathesis.py) found."""

from __future__ import annotations


def test_rating_a_message_id_beyond_the_database_integers_is_a_404(client):
    response = client.post("/api/chat/messages/99999999999999999999/rating", json={"rating": 1})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404
