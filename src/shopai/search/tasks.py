"""Keeping product vectors current in the background.

Every change the catalog announces becomes one job that recomputes just the stale
vectors; its idempotency key names the products and the text hashes, so saving a
product twice with the same text queues the work once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from ..catalog.signals import products_changed
from ..extensions import db
from ..jobs import JobContext, add_job, job_handler
from .embeddings import (
    embeddings_model,
    refresh_embeddings,
    stale_product_ids,
    stale_texts,
    text_hash,
)

log = logging.getLogger(__name__)

REFRESH_KIND = "embeddings.refresh"
# Larger sets (a category of thousands renamed) are queued as "every stale vector":
# the same work, without a payload of thousands of ids.
MAX_LISTED_PRODUCTS = 500


def schedule_refresh(product_ids: Sequence[int] | None = None) -> None:
    """Queue the recomputation of these products' stale vectors (None: every product),
    committed."""
    add_refresh_job(product_ids)
    db.session.commit()


def add_refresh_job(product_ids: Sequence[int] | None = None) -> None:
    """`schedule_refresh` in the caller's unit of work (see `jobs.add_job`). The key
    names the model, the products and their texts: the same work is queued once, and
    new text is new work."""
    stale = stale_texts(product_ids)
    if not stale:
        return
    work = ";".join(f"{pid}:{text_hash(stale[pid])}" for pid in sorted(stale))
    fingerprint = hashlib.sha256(f"{embeddings_model()}|{work}".encode()).hexdigest()
    listed = product_ids is not None and len(stale) <= MAX_LISTED_PRODUCTS
    payload = {"product_ids": sorted(stale) if listed else None}
    add_job(REFRESH_KIND, payload, key=f"{REFRESH_KIND}:{fingerprint}")


@products_changed.connect
def _on_products_changed(_sender: Any, product_ids: Sequence[int], **_extra: Any) -> None:
    # The job is committed with the save. Failing to queue it must not turn the save
    # into an error page: `shopai embeddings rebuild` (and the next save) pick the
    # work up again.
    try:
        add_refresh_job(product_ids)
    except Exception:
        log.exception("could not queue search vectors for %d product(s)", len(product_ids))


@job_handler(REFRESH_KIND)
def refresh_vectors(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Idempotent: each batch is an upsert, and vectors already fresh are skipped."""
    ids = stale_product_ids(payload.get("product_ids"))
    total = len(ids)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        ctx.progress(done, total, "vectors")

    ctx.progress(0, total, "vectors")
    refresh_embeddings(ids, who=f"job:{ctx.job_id}", progress=advance)
