import pytest

from shopai.images.services import attach_image, store_image

from ..factories import image_bytes, make_category, make_product


@pytest.fixture
def product(app):
    return make_product(
        "Kestrel K7 Wireless Headphones", "199.00", make_category("Headphones"), featured=True
    )


@pytest.mark.parametrize("url", ["/", "/home"])
def test_home_shows_featured_newest_and_categories(client, product, url):
    html = client.get(url).get_data(as_text=True)
    assert "Featured" in html and "New arrivals" in html
    assert "Kestrel K7 Wireless Headphones" in html
    assert 'href="/category/headphones"' in html


def test_product_page_shows_catalog_price_and_placeholder(client, product):
    html = client.get(f"/product/{product.slug}").get_data(as_text=True)
    assert "$199.00" in html
    assert "img/placeholder.svg" in html
    assert 'alt="No image of this product yet"' in html


def test_book_product_url_by_id_redirects_to_canonical(client, product):
    response = client.get(f"/product/{product.id}?ref=book")
    assert response.status_code == 302  # not 301: renaming a product changes its slug
    assert response.headers["Location"] == f"/product/{product.slug}?ref=book"


def test_product_with_image_links_the_stored_file(client, product):
    image = attach_image(product, store_image(image_bytes()))
    html = client.get(f"/product/{product.slug}").get_data(as_text=True)
    assert f"/media/{image.path}" in html
    with client.get(f"/media/{image.path}") as media:
        assert media.status_code == 200
        assert media.mimetype == "image/webp"
        assert "immutable" in media.headers["Cache-Control"]


def test_media_cannot_escape_the_upload_folder(client, app):
    assert client.get("/media/../shopai.db").status_code == 404
    assert client.get("/media/%2e%2e/secret_key").status_code == 404


@pytest.mark.parametrize("url", ["/products", "/products/1", "/products?page=1"])
def test_product_list(client, product, url):
    assert "Kestrel K7" in client.get(url).get_data(as_text=True)


def test_product_list_pages(client, app):
    category = make_category()
    for n in range(15):
        make_product(f"Item {n:02d}", category=category)
    first = client.get("/products").get_data(as_text=True)
    second = client.get("/products/2").get_data(as_text=True)
    assert "Item 00" in first and "Item 12" not in first
    assert "Item 12" in second and 'href="/products/1"' in second


@pytest.mark.parametrize("page", ["0", "-3", "abc", "²"])
def test_odd_page_numbers_mean_the_first_page(client, product, page):
    assert client.get(f"/products?page={page}").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/products?page=99999999",
        "/products/7",
        "/products/99999999999999999999999",
        "/search?page=50",
    ],
)
def test_pages_past_the_end_are_not_found(client, product, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/product/²",
        "/category/²",
        "/product/99999999999999999999999",
        "/api/products/99999999999999999999999",
        "/api/products?category=99999999999999999999999",
    ],
)
def test_odd_ids_are_not_found_not_errors(client, app, url):
    assert client.get(url).status_code in (400, 404)


def test_pager_links_ignore_url_for_options_in_the_query(client, app):
    """Visitor parameters are data: they neither pick url_for options nor path values."""
    category = make_category("Cables")
    for n in range(15):
        make_product(f"Cable {n:02d}", category=category)
    html = client.get("/category/cables?key=laptops&_external=1&_anchor=x").get_data(as_text=True)
    assert 'href="/category/cables?_external=1&amp;_anchor=x&amp;page=2"' in html


def test_categories_and_category_page(client, product):
    html = client.get("/categories").get_data(as_text=True)
    assert "Headphones" in html
    category = client.get(f"/category/{product.category.slug}").get_data(as_text=True)
    assert "Kestrel K7" in category
    by_id = client.get(f"/category/{product.category.id}?page=1")
    assert by_id.status_code == 302
    assert by_id.headers["Location"] == f"/category/{product.category.slug}?page=1"


def test_unknown_pages_are_friendly_404s(client, app):
    response = client.get("/product/nothing-here")
    assert response.status_code == 404
    assert "could not find" in response.get_data(as_text=True)
    assert response.mimetype == "text/html"


def test_search_page_with_filters(client, product):
    cheap = make_product("Kestrel Buds Mini", "59.00", product.category)
    html = client.get("/search?q=kestrel&min_price=100").get_data(as_text=True)
    assert product.name in html and cheap.name not in html
    assert "1 product found" in html


def test_search_rejects_bad_filters_with_a_message(client, app):
    response = client.get("/search?min_price=abc&max_price=-1")
    assert response.status_code == 400
    assert "correct the highlighted filters" in response.get_data(as_text=True)


def test_search_reports_min_above_max(client, app):
    response = client.get("/search?min_price=50&max_price=10")
    assert response.status_code == 400
    assert "must not be below" in response.get_data(as_text=True)


def test_search_query_is_bounded(client, app):
    assert client.get("/search?q=" + "x" * 201).status_code == 400


def test_unhandled_error_renders_500_page(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert "kaboom" not in response.get_data(as_text=True)
