"""The OpenAPI 3.1 description of the JSON API, served at `/api/openapi.json`.

Hand-maintained on purpose: the views validate input by hand or with WTForms, so a
generator would have nothing to read the limits from, and a spec written here is
reviewed like code. The limits come from the same constants the views check against
(and the chat's from the running app's settings), so they cannot drift apart;
tests/ops/test_openapi.py checks that every `/api` route is described, that
every described path exists, and that the document is valid OpenAPI 3.1.
"""

from __future__ import annotations

from typing import Any

from ..catalog.models import MAX_PRICE
from ..jobs.models import KIND_MAX, JobStatus
from ..search.services import SORTS
from ..suggest.services import DEFAULT_LIMIT, MAX_LIMIT, SOURCES
from ..suggest.text import MAX_QUERY_CHARS
from ..text import MAX_ID
from ..web import MAX_PAGE, MAX_PER_PAGE

OPENAPI_VERSION = "3.1.0"
IMAGE_STATUSES = ("none", "queued", "running", "succeeded", "failed")
MESSAGE_STATUSES = ("complete", "streaming", "stopped", "limited", "failed")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _id_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    }


NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
HIGHLIGHT = {
    "type": "array",
    "description": "[start, end) offsets, in Unicode code points, of what matched",
    "items": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "minItems": 2,
        "maxItems": 2,
    },
}
# Every POST needs the session cookie and the CSRF token of that session; the admin
# endpoints need the session of a signed-in admin. Security schemes, not parameters:
# clients (and fuzzers) supply them, they are not data to vary.
SECURITY_SCHEMES = {
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": "The shop's session cookie (set by any page, or GET /csrf-token).",
    },
    "csrf": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRFToken",
        "description": "The token from GET /csrf-token, valid with the session cookie it "
        "was issued with. Without it every POST is refused with 400.",
    },
}
STATE_CHANGE: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]
SESSION: list[dict[str, list[str]]] = [{"session": []}]
RATE_LIMITED = _error("Too many requests from this client (Retry-After says when to retry).")
BAD_CSRF = _error("Invalid body, or missing or wrong CSRF token.")


def _schemas(max_message_chars: int) -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "description": "Every error the API returns, whatever the status.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "name", "message"],
                    "properties": {
                        "code": {"type": "integer", "minimum": 400, "maximum": 599},
                        "name": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "description": "Messages per invalid input field.",
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        },
                    },
                }
            },
        },
        "Category": {
            "type": "object",
            "required": ["id", "name", "slug", "description", "url"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "slug": {"type": "string"},
                "description": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
            },
        },
        "Image": {
            "type": "object",
            "required": ["url", "thumbnail_url", "width", "height", "source"],
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "thumbnail_url": {"type": "string", "format": "uri"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "source": {"type": "string", "description": "upload or ai"},
            },
        },
        "Product": {
            "type": "object",
            "required": [
                "id",
                "name",
                "slug",
                "description",
                "price",
                "category",
                "featured",
                "url",
                "image",
                "image_url",
                "thumbnail_url",
                "image_ai_generated",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "slug": {"type": "string"},
                "description": {"type": "string"},
                "price": {
                    "type": "string",
                    "pattern": r"^\d+\.\d{2}$",
                    "description": "A decimal string, exact to the cent (USD).",
                },
                "category": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "featured": {"type": "boolean"},
                "url": {"type": "string", "format": "uri"},
                "image": {"oneOf": [_ref("Image"), {"type": "null"}]},
                "image_url": {"type": ["string", "null"], "format": "uri"},
                "thumbnail_url": {"type": ["string", "null"], "format": "uri"},
                "image_ai_generated": {"type": "boolean"},
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
            },
        },
        "ProductDetail": {
            "allOf": [
                _ref("Product"),
                {
                    "type": "object",
                    "required": ["image_status"],
                    "properties": {
                        "image_status": {
                            "enum": list(IMAGE_STATUSES),
                            "description": "State of the product's latest image request.",
                        }
                    },
                },
            ]
        },
        "ProductPage": {
            "type": "object",
            "required": ["items", "page", "per_page", "total", "pages"],
            "properties": {
                "items": {"type": "array", "items": _ref("Product")},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                "total": {"type": "integer", "minimum": 0},
                "pages": {"type": "integer", "minimum": 0},
            },
        },
        "Suggestions": {
            "type": "object",
            "required": ["query", "normalized", "suggestions", "products", "categories"],
            "properties": {
                "query": {"type": "string", "description": "As typed."},
                "normalized": {"type": "string"},
                "suggestions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["text", "source", "hits", "highlight"],
                        "properties": {
                            "text": {"type": "string"},
                            "source": {"enum": list(SOURCES)},
                            "hits": {"type": "integer", "minimum": 1},
                            "highlight": HIGHLIGHT,
                        },
                    },
                },
                "products": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "price", "url", "thumbnail_url", "highlight"],
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "price": {"type": "string"},
                            "url": {"type": "string"},
                            "thumbnail_url": NULLABLE_STRING,
                            "highlight": HIGHLIGHT,
                        },
                    },
                },
                "categories": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "url", "highlight"],
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "url": {"type": "string"},
                            "highlight": HIGHLIGHT,
                        },
                    },
                },
            },
        },
        "SuggestionClick": {
            "type": "object",
            "required": ["text", "source"],
            "properties": {
                "query": {
                    "type": "string",
                    "maxLength": MAX_QUERY_CHARS,
                    "description": "What was typed; never stored.",
                },
                "text": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "description": "The picked suggestion (not blank once normalized).",
                },
                "source": {"enum": list(SOURCES)},
            },
        },
        "ProductCard": {
            "type": "object",
            "required": ["id", "name", "price", "url", "image_url", "category"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "price": {"type": "string", "description": "Formatted, e.g. $199.00."},
                "url": {"type": "string"},
                "image_url": {"type": "string"},
                "category": {"type": "string"},
            },
        },
        "ChatMessage": {
            "type": "object",
            "required": ["id", "role", "text", "html", "status", "products", "rating"],
            "properties": {
                "id": {"type": "integer"},
                "role": {"enum": ["user", "assistant"]},
                "text": {"type": "string"},
                "html": {
                    "type": ["string", "null"],
                    "description": "Sanitized HTML of an answer; null for the shopper's.",
                },
                "status": {"enum": list(MESSAGE_STATUSES)},
                "products": {"type": "array", "items": _ref("ProductCard")},
                "rating": {"enum": [1, -1, None]},
            },
        },
        "Conversation": {
            "type": "object",
            "required": ["conversation_id", "messages"],
            "properties": {
                "conversation_id": NULLABLE_STRING,
                "messages": {"type": "array", "items": _ref("ChatMessage")},
            },
        },
        "ChatRequest": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": max_message_chars,
                    "pattern": r"\S",
                    "description": f"At most {max_message_chars} characters "
                    "(SHOPAI_CHAT_MAX_MESSAGE_CHARS), not blank.",
                },
                "conversation_id": {
                    "type": ["string", "null"],
                    "description": "Continue this conversation of the same browser session.",
                },
            },
        },
        "ChatReply": {
            "type": "object",
            "required": [
                "conversation_id",
                "message",
                "html",
                "message_id",
                "status",
                "notice",
                "products",
            ],
            "properties": {
                "conversation_id": {"type": "string"},
                "message": {"type": "string", "description": "The answer as markdown."},
                "html": {"type": "string", "description": "The answer as sanitized HTML."},
                "message_id": {"type": "integer"},
                "status": {"enum": list(MESSAGE_STATUSES)},
                "notice": NULLABLE_STRING,
                "products": {"type": "array", "items": _ref("ProductCard")},
            },
        },
        "Rating": {
            "type": "object",
            "required": ["rating"],
            "properties": {"rating": {"enum": [1, -1, 0], "description": "0 takes a rating back."}},
        },
        "Job": {
            "type": "object",
            "required": [
                "id",
                "kind",
                "status",
                "attempts",
                "max_attempts",
                "progress",
                "last_error",
                "idempotency_key",
                "run_after",
                "lease_until",
                "worker",
                "created_at",
                "started_at",
                "finished_at",
                "updated_at",
                "can_retry",
                "can_cancel",
            ],
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string", "maxLength": KIND_MAX},
                "status": {"enum": [status.value for status in JobStatus]},
                "attempts": {"type": "integer", "minimum": 0},
                "max_attempts": {"type": "integer", "minimum": 0},
                "progress": {
                    "type": "object",
                    "required": ["done", "total", "message"],
                    "properties": {
                        "done": {"type": "integer"},
                        "total": {"type": ["integer", "null"]},
                        "message": {"type": "string"},
                    },
                },
                "last_error": {"type": "string"},
                "idempotency_key": NULLABLE_STRING,
                "run_after": NULLABLE_DATE_TIME,
                "lease_until": NULLABLE_DATE_TIME,
                "worker": NULLABLE_STRING,
                "created_at": NULLABLE_DATE_TIME,
                "started_at": NULLABLE_DATE_TIME,
                "finished_at": NULLABLE_DATE_TIME,
                "updated_at": NULLABLE_DATE_TIME,
                "can_retry": {"type": "boolean"},
                "can_cancel": {"type": "boolean"},
                "payload": {"type": "object", "description": "Only on GET /api/jobs/{job_id}."},
            },
        },
    }


def _catalog_paths() -> dict[str, Any]:
    price = {
        "type": "string",
        "pattern": r"^\d{1,8}(\.\d{1,2})?$",
        "description": f"A decimal from 0 to {MAX_PRICE}.",
    }
    return {
        "/api/products": {
            "get": {
                "operationId": "listProducts",
                "tags": ["catalog"],
                "summary": "Search and list products",
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                    {
                        "name": "category",
                        "in": "query",
                        "description": "A category slug; an unknown one is a 400.",
                        "schema": {"type": "string"},
                    },
                    {"name": "min_price", "in": "query", "schema": price},
                    {"name": "max_price", "in": "query", "schema": price},
                    {
                        "name": "sort",
                        "in": "query",
                        "schema": {"enum": list(SORTS), "default": "relevance"},
                    },
                    {
                        "name": "page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                    },
                    {
                        "name": "per_page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                    },
                ],
                "responses": {
                    "200": _json(_ref("ProductPage"), "A page of matching products."),
                    "400": _error("Invalid parameters (see `fields`)."),
                    "404": _error("A page past the last one (page 1 is never one)."),
                },
            }
        },
        "/api/products/{product_id}": {
            "get": {
                "operationId": "getProduct",
                "tags": ["catalog"],
                "summary": "One product, with the state of its latest image request",
                "parameters": [_id_param("product_id", "The product's id.")],
                "responses": {
                    "200": _json(_ref("ProductDetail"), "The product."),
                    "404": _error("No such product."),
                },
            }
        },
        "/api/categories": {
            "get": {
                "operationId": "listCategories",
                "tags": ["catalog"],
                "summary": "Every category",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Category")}},
                        },
                        "The categories, by name.",
                    )
                },
            }
        },
    }


def _suggest_paths() -> dict[str, Any]:
    return {
        "/api/suggest": {
            "get": {
                "operationId": "suggest",
                "tags": ["suggestions"],
                "summary": "Suggestions, products and categories for what is being typed",
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    },
                    {
                        "name": "settled",
                        "in": "query",
                        "description": "The shopper stopped typing: a little-known query may "
                        "be handed to the model (only from the shop's own pages).",
                        "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                    },
                ],
                "responses": {
                    "200": _json(_ref("Suggestions"), "What to show under the search box."),
                    "400": _error("Invalid parameters (see `fields`)."),
                    "429": RATE_LIMITED,
                },
            }
        },
        "/api/suggest/clicks": {
            "post": {
                "operationId": "recordSuggestionClick",
                "tags": ["suggestions"],
                "summary": "A shopper picked a suggestion",
                "security": STATE_CHANGE,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SuggestionClick")}},
                },
                "responses": {
                    "204": {"description": "Counted."},
                    "400": BAD_CSRF,
                    "429": RATE_LIMITED,
                },
            }
        },
    }


def _chat_paths() -> dict[str, Any]:
    conversation_param = {
        "name": "conversation_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "/api/chat": {
            "get": {
                "operationId": "currentConversation",
                "tags": ["assistant"],
                "summary": "This browser session's current conversation",
                "responses": {"200": _json(_ref("Conversation"), "The messages so far.")},
            },
            "post": {
                "operationId": "sendChatMessage",
                "tags": ["assistant"],
                "summary": "Ask the shop assistant",
                "description": "With `Accept: text/event-stream` the answer streams as "
                "Server-Sent Events: `token` ({text}), `products` ({products}), `error` "
                "({message}), and `done` last ({conversation_id, message_id, status, html, "
                "notice}). Otherwise the whole answer comes as one JSON object.",
                "security": STATE_CHANGE,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ChatRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "The answer.",
                        "content": {
                            "application/json": {"schema": _ref("ChatReply")},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                        "links": {
                            "rate": {
                                "operationId": "rateAnswer",
                                "parameters": {"message_id": "$response.body#/message_id"},
                            },
                            "stop": {
                                "operationId": "stopAnswer",
                                "parameters": {
                                    "conversation_id": "$response.body#/conversation_id"
                                },
                            },
                        },
                    },
                    "400": BAD_CSRF,
                    "404": _error("The conversation is gone."),
                    "429": _error(
                        "Too many messages, an answer still being written, or the "
                        "conversation's length limit reached."
                    ),
                    "503": _error("Every answer slot of this process is busy; try again."),
                },
            },
        },
        "/api/chat/new": {
            "post": {
                "operationId": "newConversation",
                "tags": ["assistant"],
                "summary": "Start over: the next message opens a new conversation",
                "security": STATE_CHANGE,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["conversation_id"],
                            "properties": {"conversation_id": {"type": "null"}},
                        },
                        "Started over.",
                    ),
                    "400": BAD_CSRF,
                },
            }
        },
        "/api/chat/{conversation_id}/stop": {
            "post": {
                "operationId": "stopAnswer",
                "tags": ["assistant"],
                "summary": "Stop the answer being written in a conversation",
                "parameters": [conversation_param],
                "security": STATE_CHANGE,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["stopping"],
                            "properties": {"stopping": {"const": True}},
                        },
                        "The answer stops at its next word.",
                    ),
                    "400": BAD_CSRF,
                    "404": _error("No answer is being written there."),
                },
            }
        },
        "/api/chat/messages/{message_id}/rating": {
            "post": {
                "operationId": "rateAnswer",
                "tags": ["assistant"],
                "summary": "Rate one of this session's answers",
                "parameters": [_id_param("message_id", "The answer's id.")],
                "security": STATE_CHANGE,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Rating")}},
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["id", "rating"],
                            "properties": {
                                "id": {"type": "integer"},
                                "rating": {"enum": [1, -1, None]},
                            },
                        },
                        "The rating as stored.",
                    ),
                    "400": BAD_CSRF,
                    "404": _error("No such answer in this session's conversations."),
                },
            }
        },
    }


def _jobs_paths() -> dict[str, Any]:
    job_id = _id_param("job_id", "The job's id.")
    admin_errors = {
        "401": _error("Not signed in."),
        "403": _error("Signed in, but not an admin."),
    }
    changed = {
        "200": _json(_ref("Job"), "The job as it is now."),
        "400": BAD_CSRF,
        **admin_errors,
        "404": _error("No such job."),
        "409": _error("The job is not in a state that allows this."),
    }
    return {
        "/api/jobs": {
            "get": {
                "operationId": "listJobs",
                "tags": ["jobs"],
                "summary": "The newest background jobs (admins)",
                "security": SESSION,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "description": "Unknown values mean any status.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "kind",
                        "in": "query",
                        "description": f"Cut to {KIND_MAX} characters.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Job")}},
                        },
                        "At most 100 jobs, newest first.",
                    ),
                    **admin_errors,
                },
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "tags": ["jobs"],
                "summary": "One job with its payload (admins)",
                "security": SESSION,
                "parameters": [job_id],
                "responses": {
                    "200": _json(_ref("Job"), "The job."),
                    **admin_errors,
                    "404": _error("No such job."),
                },
            }
        },
        "/api/jobs/{job_id}/retry": {
            "post": {
                "operationId": "retryJob",
                "tags": ["jobs"],
                "summary": "Queue a failed or cancelled job again (admins)",
                "parameters": [job_id],
                "security": STATE_CHANGE,
                "responses": changed,
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "tags": ["jobs"],
                "summary": "Cancel a queued or running job (admins)",
                "parameters": [job_id],
                "security": STATE_CHANGE,
                "responses": changed,
            }
        },
    }


def openapi_document(max_message_chars: int = 1000) -> dict[str, Any]:
    """The whole document; a new dict each call (callers may change it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "ShopAI JSON API",
            "version": "1",
            "description": "The shop's catalog, search suggestions, assistant and job "
            'queue as JSON. Errors are always `{"error": {code, name, message}}`. '
            "State changes need the session cookie and its CSRF token (GET /csrf-token) "
            "in the X-CSRFToken header.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            **_catalog_paths(),
            **_suggest_paths(),
            **_chat_paths(),
            **_jobs_paths(),
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "tags": ["meta"],
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 description.")},
                }
            },
            "/csrf-token": {
                "get": {
                    "operationId": "csrfToken",
                    "tags": ["meta"],
                    "summary": "A CSRF token for this session (starts one)",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["csrf_token"],
                                "properties": {"csrf_token": {"type": "string"}},
                            },
                            "Send it back in the X-CSRFToken header with the session cookie.",
                        )
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(max_message_chars),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
