"""What the catalog announces, so features that derive data from products (search
vectors, shopper queries, images) follow changes without the catalog knowing them."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with `product_ids` (products created or edited, or whose category was renamed:
# their searchable text changed) inside the unit of work that changes them, written
# (flushed) but not committed: receivers add their jobs with `jobs.add_job`, so the
# change and the work it calls for are committed together, in one commit.
products_changed = _signals.signal("products-changed")
