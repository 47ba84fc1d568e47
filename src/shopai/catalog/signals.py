"""What the catalog announces, so features that derive data from products (search
vectors, shopper queries, images) follow changes without the catalog knowing them."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent after a commit with `product_ids`: products created or edited, or whose
# category was renamed (their searchable text changed).
products_changed = _signals.signal("products-changed")
