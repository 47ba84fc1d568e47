"""The bundled demo catalog: realistic data so a fresh shop has something to browse."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy import select

from .catalog.models import Category, Product
from .catalog.services import unique_slug
from .extensions import db
from .text import slugify

DEMO_FILE = "demo_catalog.json"


@dataclass(frozen=True)
class SeedResult:
    categories_added: int
    products_added: int
    products_skipped: int


def read_demo_catalog() -> dict[str, Any]:
    text = resources.files("shopai.data").joinpath(DEMO_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def load_demo_catalog(
    progress: Callable[[list, str], Any] | None = None,
) -> SeedResult:
    """Insert what is missing, matched by slug, in one transaction; existing rows are left alone."""
    data = read_demo_catalog()
    categories = {c.name.lower(): c for c in db.session.scalars(select(Category))}
    existing_slugs = set(db.session.scalars(select(Product.slug)))

    categories_added = 0
    for entry in data["categories"]:
        if entry["name"].lower() not in categories:
            category = Category(
                name=entry["name"],
                slug=unique_slug(Category, entry["name"], None),
                description=entry["description"],
            )
            db.session.add(category)
            categories[entry["name"].lower()] = category
            categories_added += 1

    added = skipped = 0
    entries = data["products"]
    with progress(entries, "Products") if progress else nullcontext(entries) as bar:
        for entry in bar:
            slug = slugify(entry["name"])
            if slug in existing_slugs:
                skipped += 1
                continue
            db.session.add(
                Product(
                    name=entry["name"],
                    slug=slug,
                    description=entry["description"],
                    price=Decimal(entry["price"]),
                    category=categories[entry["category"].lower()],
                    featured=entry.get("featured", False),
                )
            )
            existing_slugs.add(slug)
            added += 1
    db.session.commit()
    return SeedResult(categories_added, added, skipped)
