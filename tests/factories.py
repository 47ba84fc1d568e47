"""Test data builders; they go through the same services the app uses."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from shopai.catalog import services as catalog
from shopai.catalog.models import Category, Product
from shopai.db_setup import configure_engine

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"


def make_category(name: str = "Headphones", description: str = "") -> Category:
    return catalog.create_category(name, description)


def make_product(
    name: str = "Kestrel K7 Wireless Headphones",
    price: str = "199.00",
    category: Category | None = None,
    description: str = "Over-ear, 30 hours of battery.",
    featured: bool = False,
) -> Product:
    return catalog.create_product(
        name=name,
        price=Decimal(price),
        category=category or make_category(),
        description=description,
        featured=featured,
    )


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no CSRF meta tag"
    return match.group(1)


def execute_elsewhere(database_uri: str, statement: str) -> None:
    """Run SQL on the shop's database as another process of the shop would: through a
    connection of its own, outside this test's session and engine."""
    other = create_engine(database_uri, poolclass=NullPool)
    configure_engine(other)
    try:
        with other.begin() as connection:
            connection.execute(text(statement))
    finally:
        other.dispose()
