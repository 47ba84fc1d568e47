"""Catalog rules: unique names and slugs, safe deletes, listings.

Views call these with plain values; nothing here knows about requests.
"""

from __future__ import annotations

from decimal import Decimal

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..images.services import attach_image
from ..images.storage import StoredImage
from ..text import as_id, clean_name, clean_text, name_key, slugify
from .models import MAX_PRICE, Category, Product
from .signals import products_changed

# Two saves of the same new name can pick the same free slug at once; the loser of
# the race retries with the next one (a slug taken by each retry is also possible).
SLUG_ATTEMPTS = 3


class CatalogError(ValueError):
    """A catalog rule was broken; the message is safe to show to the admin."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def unique_slug(model: type[Category] | type[Product], name: str, exclude_id: int | None) -> str:
    base = slugify(name, fallback=model.__tablename__)
    if base.isdigit():  # an all-digit slug would read as an id in URLs
        base = f"{model.__tablename__}-{base}"
    taken_query = select(model.slug).where(model.slug.like(f"{base}%"))
    if exclude_id is not None:
        taken_query = taken_query.where(model.id != exclude_id)
    taken = set(db.session.scalars(taken_query))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _commit_or_explain(message: str) -> None:
    """Commit; a unique constraint lost to a concurrent request becomes a form error."""
    _flush_or_explain(message)
    db.session.commit()


def _flush_or_explain(message: str) -> None:
    """Write the pending changes, uncommitted; a unique constraint lost to a concurrent
    request becomes a form error (the index decides when the row is written)."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise CatalogError(message, field="name") from None


def categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.name)))


def category_product_counts() -> dict[int, int]:
    rows = db.session.execute(
        select(Product.category_id, func.count(Product.id)).group_by(Product.category_id)
    )
    return {category_id: count for category_id, count in rows}


def find_category(key: str | int) -> Category | None:
    """A category by id, slug or name: the book's URLs use ids and names, ours use slugs."""
    if (category_id := as_id(key)) is not None:
        return db.session.get(Category, category_id)
    if isinstance(key, int):
        return None
    by_slug_or_name = or_(Category.slug == key, func.lower(Category.name) == key.lower())
    return db.session.scalar(select(Category).where(by_slug_or_name).limit(1))


def _check_name(name: str) -> str:
    """A name as stored (see `text.clean_name`), or the rule it breaks, on its field."""
    try:
        return clean_name(name)
    except ValueError as exc:
        raise CatalogError(str(exc), field="name") from None


def _check_price(price: Decimal) -> Decimal:
    """The same bounds as the forms, for callers that are not forms (CLI, jobs, tests)."""
    if not price.is_finite() or not Decimal(0) <= price <= MAX_PRICE:
        raise CatalogError(f"A price is between 0 and {MAX_PRICE:,}.", field="price")
    if price != price.quantize(Decimal("0.01")):
        raise CatalogError("Use at most two decimals.", field="price")
    return price


def _check_category_name(name: str, exclude_id: int | None) -> str:
    name = _check_name(name)
    # Whole names compared ignoring case in any script ("Éclair" = "éclair"), so "Phone"
    # is a different category from "Phones". Categories are few: compare them in Python,
    # since SQLite's lower() only folds ASCII.
    key = name_key(name)
    for category_id, existing in db.session.execute(select(Category.id, Category.name)):
        if category_id != exclude_id and name_key(existing) == key:
            raise CatalogError(f"A category named “{existing}” already exists.", field="name")
    return name


def create_category(name: str, description: str = "") -> Category:
    name = _check_category_name(name, exclude_id=None)
    category = Category(
        name=name, slug=unique_slug(Category, name, None), description=clean_text(description)
    )
    db.session.add(category)
    _commit_or_explain(f"A category named “{name}” already exists.")
    return category


def update_category(category: Category, name: str, description: str = "") -> Category:
    name = _check_category_name(name, exclude_id=category.id)
    renamed = name != category.name
    if renamed:
        category.slug = unique_slug(Category, name, category.id)
    category.name = name
    category.description = clean_text(description)
    _flush_or_explain(f"A category named “{name}” already exists.")
    if renamed:  # its products' searchable text changed: their jobs commit with the name
        ids = list(db.session.scalars(select(Product.id).where(Product.category_id == category.id)))
        if ids:
            products_changed.send(product_ids=ids)
    db.session.commit()
    return category


def delete_category(category: Category) -> None:
    """Refuse to delete a category that still holds products: nothing is lost silently."""
    count = db.session.scalar(select(func.count(Product.id)).where(Product.category == category))
    if count:
        raise CatalogError(
            f"“{category.name}” still holds {count} product(s); move or delete them first."
        )
    db.session.delete(category)
    db.session.commit()


def create_product(
    *,
    name: str,
    price: Decimal,
    category: Category,
    description: str = "",
    featured: bool = False,
    image: StoredImage | None = None,
) -> Product:
    return update_product(
        Product(),
        name=name,
        price=price,
        category=category,
        description=description,
        featured=featured,
        image=image,
    )


def update_product(
    product: Product,
    *,
    name: str,
    price: Decimal,
    category: Category,
    description: str = "",
    featured: bool = False,
    image: StoredImage | None = None,
) -> Product:
    """`save_product`, committed: the product, its image and the jobs it calls for."""
    save_product(
        product,
        name=name,
        price=price,
        category=category,
        description=description,
        featured=featured,
        image=image,
    )
    db.session.commit()
    return product


def save_product(
    product: Product,
    *,
    name: str,
    price: Decimal,
    category: Category,
    description: str = "",
    featured: bool = False,
    image: StoredImage | None = None,
) -> Product:
    """Set every editable field and, given `image`, show it, in the session's unit of
    work without committing it: the caller adds what belongs with the product (an
    image request) and commits once, so a failure leaves neither a product without
    its image (or its jobs) nor an image without its product. Call it first in the
    unit of work: losing a slug race rolls the session back.

    The slug follows the name and stays unique, also against a concurrent save of
    the same name: the unique index decides when the row is written (the flush), and
    the loser takes the next free slug. `products_changed` is sent after the flush,
    so the features that follow the catalog add their jobs to this unit of work.
    """
    name = _check_name(name)
    price = _check_price(price)
    description = clean_text(description)
    for attempt in range(SLUG_ATTEMPTS):
        # Set on every attempt: a rollback expires the changes of an existing product
        # (its slug reads as the old one again, hence the local `slug`).
        slug = product.slug
        if attempt or name != product.name or not slug:
            slug = product.slug = unique_slug(Product, name, product.id)
        product.name = name
        product.price = price
        product.category = category
        product.description = description
        product.featured = featured
        if image is not None:
            attach_image(product, image)
        db.session.add(product)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            if not _slug_taken(slug, product.id):
                raise
        else:
            products_changed.send(product_ids=[product.id])
            return product
    raise CatalogError("Other products took this name at the same moment; try again.", "name")


def _slug_taken(slug: str, exclude_id: int | None) -> bool:
    """Whether another product holds `slug`: the unique index's verdict, re-read."""
    query = select(Product.id).where(Product.slug == slug)
    if exclude_id is not None:
        query = query.where(Product.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def catalog_has_products() -> bool:
    return db.session.scalar(select(Product.id).limit(1)) is not None


def find_product(key: str | int) -> Product | None:
    if (product_id := as_id(key)) is not None:
        return db.session.get(Product, product_id)
    if isinstance(key, int):
        return None
    return db.session.scalar(select(Product).where(Product.slug == key))


def newest_products(limit: int = 8) -> list[Product]:
    query = select(Product).order_by(Product.created_at.desc(), Product.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def featured_products(limit: int = 8) -> list[Product]:
    query = select(Product).where(Product.featured).order_by(Product.name).limit(limit)
    return list(db.session.scalars(query))


def product_page(page: int, per_page: int, category: Category | None = None) -> Pagination:
    query = select(Product).order_by(Product.name, Product.id)
    if category is not None:
        query = query.where(Product.category_id == category.id)
    return db.paginate(query, page=page, per_page=per_page, error_out=False, count=True)


def delete_product(product: Product) -> None:
    """Its image rows go with it; files no one uses are removed later by
    `shopai images gc` (deleting them here could race an identical upload)."""
    db.session.delete(product)
    db.session.commit()
