"""One client for every model backend.

Knows nothing of Flask or the catalog: messages, prompts and texts go in; text,
token streams, validated JSON, vectors and image bytes come out, with timeouts,
bounded retries, a circuit breaker per backend and a usage record per call.
"""
