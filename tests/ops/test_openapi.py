"""/api/openapi.json describes the JSON API as it is: every route, nothing more, valid."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from shopai.api.openapi import openapi_document

# JSON routes outside /api that the document describes too (scripts need the token).
EXTRA_PATHS = {"/csrf-token"}
METHODS = {"get", "post", "put", "patch", "delete"}


def _flask_path(rule: str) -> str:
    """`/api/jobs/<int(max=9):job_id>` as OpenAPI writes it: `/api/jobs/{job_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = _flask_path(rule.rule)
        if path.startswith("/api/") or path in EXTRA_PATHS:
            methods = {m.lower() for m in rule.methods or ()} & METHODS
            routes.setdefault(path, set()).update(methods)
    return routes


def test_the_document_is_served_and_valid_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_schema_in_it_is_valid_json_schema(app):
    for schema in openapi_document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_api_route_is_described_and_every_description_is_a_route(app):
    described = {
        path: {method for method in item if method in METHODS}
        for path, item in openapi_document()["paths"].items()
    }
    assert described == _routes(app)


def test_path_parameters_match_the_routes(app):
    for path, item in openapi_document()["paths"].items():
        in_path = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (method, path)


def test_limits_follow_the_settings(client, app):
    app.config["SHOPAI_CHAT_MAX_MESSAGE_CHARS"] = 42
    document = client.get("/api/openapi.json").get_json()
    message = document["components"]["schemas"]["ChatRequest"]["properties"]["message"]
    assert message["maxLength"] == 42


def test_every_operation_documents_its_errors_with_the_error_shape(app):
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"]
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("/api/products?per_page=2", "ProductPage"),
        ("/api/products?min_price=x", "Error"),
        ("/api/suggest?q=kestrel", "Suggestions"),
        ("/api/chat", "Conversation"),
        ("/api/products/999", "Error"),
    ],
)
def test_real_answers_conform(client, url, schema):
    from tests.factories import make_product

    make_product()
    document = openapi_document()
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )
    validator.validate(client.get(url).get_json())
