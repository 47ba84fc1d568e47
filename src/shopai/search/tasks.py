"""Keeping product vectors current in the background.

Every change the catalog announces becomes one job that recomputes just the stale
vectors; its idempotency key names the products and the text hashes, so saving a
product twice with the same text queues the work once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ..catalog.signals import products_changed
from ..jobs import JobContext, enqueue, job_handler
from .embeddings import (
    embeddings_model,
    refresh_embeddings,
    stale_product_ids,
    stale_texts,
    text_hash,
)

REFRESH_KIND = "embeddings.refresh"


def schedule_refresh(product_ids: Sequence[int] | None = None) -> None:
    """Queue the recomputation of these products' stale vectors (None: every product).
    The key names the model, the products and their texts: the same work is queued
    once, and new text is new work."""
    stale = stale_texts(product_ids)
    if not stale:
        return
    work = ";".join(f"{pid}:{text_hash(stale[pid])}" for pid in sorted(stale))
    fingerprint = hashlib.sha256(f"{embeddings_model()}|{work}".encode()).hexdigest()
    payload = {"product_ids": None if product_ids is None else sorted(stale)}
    enqueue(REFRESH_KIND, payload, key=f"{REFRESH_KIND}:{fingerprint}")


@products_changed.connect
def _on_products_changed(_sender: Any, product_ids: Sequence[int], **_extra: Any) -> None:
    schedule_refresh(product_ids)


@job_handler(REFRESH_KIND)
def refresh_vectors(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Idempotent: each batch is an upsert, and vectors already fresh are skipped."""
    ids = payload.get("product_ids")
    total = len(stale_product_ids(ids))
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        ctx.progress(done, total, "vectors")

    ctx.progress(0, total, "vectors")
    refresh_embeddings(ids, who=f"job:{ctx.job_id}", progress=advance)
