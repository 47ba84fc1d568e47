from decimal import Decimal

import pytest
from sqlalchemy import event, insert

from shopai.catalog import services as catalog
from shopai.catalog.models import Product
from shopai.catalog.services import CatalogError
from shopai.extensions import db
from shopai.images.services import Provenance, attach_image, image_store, store_image

from ..factories import image_bytes, make_category, make_product


def test_category_names_are_unique_ignoring_case(app):
    make_category("Phones")
    with pytest.raises(catalog.CatalogError, match="already exists"):
        make_category("phones")


def test_a_name_contained_in_another_is_not_a_duplicate(app):
    """The book refused "Phone" because "Phones" contains it (a substring check)."""
    make_category("Phones")
    assert make_category("Phone").slug == "phone"


def test_slugs_stay_unique(app):
    first = make_product("My Product")
    second = make_product("My_Product", category=first.category)
    third = make_product("My  Product!", category=first.category)
    assert [first.slug, second.slug, third.slug] == ["my-product", "my-product-2", "my-product-3"]


def test_all_digit_names_do_not_get_id_like_slugs(app):
    product = make_product("2024")
    assert product.slug == "product-2024"
    assert catalog.find_product(product.slug) == product


def test_price_keeps_its_cents(app):
    product = make_product(price="1999.99")
    db.session.expire_all()
    assert db.session.get(Product, product.id).price == Decimal("1999.99")


def test_rename_updates_slug(app):
    product = make_product("Old Name")
    catalog.update_product(
        product,
        name="New Name",
        price=Decimal("5.00"),
        category=product.category,
        description="",
    )
    assert product.slug == "new-name"


def test_a_category_with_products_is_not_deleted(app):
    product = make_product()
    with pytest.raises(catalog.CatalogError, match="still holds 1 product"):
        catalog.delete_category(product.category)
    catalog.delete_product(product)
    catalog.delete_category(product.category)
    assert catalog.categories() == []


def test_image_gc_removes_only_old_files_no_one_uses(app, runner):
    import os

    shared = store_image(image_bytes(color=(1, 2, 3)))
    own = store_image(image_bytes(color=(4, 5, 6)))
    young = store_image(image_bytes(color=(7, 8, 9)))  # stored, row not committed yet
    first, second = make_product("First"), make_product("Second", category=make_category("Two"))
    attach_image(first, shared)
    attach_image(first, own)
    attach_image(second, shared)
    catalog.delete_product(first)
    root = image_store().root
    for stored in (shared, own):  # make them look an hour old
        for path in root.rglob(f"{stored.content_hash}*.webp"):
            os.utime(path, (path.stat().st_atime - 7200, path.stat().st_mtime - 7200))

    result = runner.invoke(args=["images", "gc"])
    assert "Removed 1 unused image(s)." in result.output
    remaining = {path.name for path in root.rglob("*.webp")}
    assert f"{shared.content_hash}.webp" in remaining  # still used by Second
    assert f"{own.content_hash}.webp" not in remaining
    assert f"{own.content_hash}-thumb.webp" not in remaining
    assert f"{young.content_hash}.webp" in remaining  # too young to judge


def test_newest_image_is_shown(app):
    product = make_product()
    attach_image(product, store_image(image_bytes(color=(9, 9, 9))))
    latest = attach_image(product, store_image(image_bytes(color=(8, 8, 8))))
    assert product.image == latest
    assert [image.chosen for image in product.images] == [False, True]


def test_listing_paginates_by_name(app):
    category = make_category()
    for name in ["Charlie", "Alpha", "Bravo"]:
        make_product(name, category=category)
    page = catalog.product_page(1, per_page=2)
    assert [p.name for p in page.items] == ["Alpha", "Bravo"]
    assert page.pages == 2


def test_two_saves_of_one_new_name_both_succeed(app):
    """The slug is checked, then inserted: a concurrent save of the same name in between
    used to end in a 500 (UNIQUE constraint failed: product.slug)."""
    category = make_category()

    rivals = []

    def rival_saves_first(session, _context, _instances):
        if rivals:
            return
        rivals.append("saved")
        with db.engine.begin() as rival:
            rival.execute(
                insert(Product).values(
                    name="Cable", slug="cable", price=1, category_id=category.id, description=""
                )
            )

    event.listen(db.session, "before_flush", rival_saves_first)
    try:
        product = make_product("Cable", category=category)
    finally:
        event.remove(db.session, "before_flush", rival_saves_first)
    assert product.slug == "cable-2"
    assert sorted(db.session.scalars(db.select(Product.slug))) == ["cable", "cable-2"]


def test_a_rename_racing_a_new_product_of_that_name_takes_the_next_slug(app):
    """After the rollback the product's slug read as the old one, which was free, so
    the lost race surfaced as a 500 instead of a retry."""
    category = make_category()
    product = make_product("Old Cable", category=category)
    rivals = []

    def rival_saves_first(session, _context, _instances):
        if rivals:
            return
        rivals.append("saved")
        with db.engine.begin() as rival:
            rival.execute(
                insert(Product).values(
                    name="Cable", slug="cable", price=1, category_id=category.id, description=""
                )
            )

    event.listen(db.session, "before_flush", rival_saves_first)
    try:
        catalog.update_product(product, name="Cable", price=product.price, category=category)
    finally:
        event.remove(db.session, "before_flush", rival_saves_first)
    assert (product.name, product.slug) == ("Cable", "cable-2")


@pytest.mark.parametrize(
    "price", [Decimal("1e26"), Decimal("NaN"), Decimal("-1"), Decimal("1.001")]
)
def test_prices_out_of_range_are_catalog_errors(app, price):
    with pytest.raises(CatalogError) as info:
        make_product(price=str(price))
    assert info.value.field == "price"


def test_generated_images_keep_their_provenance_and_wait_to_be_chosen(app):
    product = make_product()
    upload = attach_image(product, store_image(image_bytes(color=(9, 9, 9))))
    candidate = attach_image(
        product,
        store_image(image_bytes(color=(7, 7, 7))),
        source="ai",
        provenance=Provenance("openai", "gpt-image-1-mini", "a cable on a desk", seed=4),
        chosen=False,
    )
    db.session.commit()
    assert product.image == upload
    assert (candidate.backend, candidate.model, candidate.prompt, candidate.seed) == (
        "openai",
        "gpt-image-1-mini",
        "a cable on a desk",
        4,
    )
    assert candidate.source == "ai" and not candidate.chosen
