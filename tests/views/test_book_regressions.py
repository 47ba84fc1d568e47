"""One test per defect of the cookbook's catalog app, so none can come back."""

import io
import re

from shopai.catalog import services as catalog

from ..factories import image_bytes, make_category


def post_product(client, name: str, category_id: int, image: bytes, filename: str = "p.png"):
    return client.post(
        "/product-create",
        data={
            "name": name,
            "price": "10.00",
            "category": str(category_id),
            "image": (io.BytesIO(image), filename),
        },
        content_type="multipart/form-data",
    )


def test_category_labels_are_escaped_in_the_product_form(admin_client):
    """The book rendered category names into radio buttons unescaped (stored XSS)."""
    make_category('"><script>alert(1)</script>')
    html = admin_client.get("/product-create").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_images_of_similar_names_never_collide(admin_client):
    """`secure_filename(name + '.png')` gave "My Product" and "My_Product" one file."""
    category = make_category()
    images = {
        "My Product": image_bytes(color=(255, 0, 0)),
        "My_Product": image_bytes(color=(0, 255, 0)),
        "Наушники": image_bytes(color=(0, 0, 255)),  # the book mapped this to "png"
        "耳机": image_bytes(color=(255, 255, 0)),
    }
    for name, data in images.items():
        assert post_product(admin_client, name, category.id, data).status_code == 302
    products = catalog.product_page(1, per_page=10).items
    paths = {product.image.path for product in products}
    assert len(products) == 4 and len(paths) == 4
    for product in products:
        with admin_client.get(f"/media/{product.image.path}") as response:
            assert response.status_code == 200


def test_company_filter_on_a_missing_column_does_not_crash(client, app):
    """The book filtered on `Product.company`, which the model never had."""
    response = client.get("/product-search?name=kestrel&company=acme", follow_redirects=True)
    assert response.status_code == 200


def test_book_search_fields_still_work(client, app):
    from ..factories import make_product

    audio = make_category("Headphones")
    make_product("Kestrel K7", "199.00", audio)
    make_product("Kestrel Buds", "59.00", audio)
    response = client.get("/product-search?name=kestrel&price=59.00&category=Headphones")
    assert response.headers["Location"].startswith("/search?")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Kestrel Buds" in html and "Kestrel K7" not in html


def test_pagination_keeps_search_filters(client, app):
    """The book's pager linked to /product-search/<page> without the query."""
    from ..factories import make_product

    category = make_category("Cables")
    for n in range(30):
        make_product(f"Cable {n:02d}", "12.00", category)
    html = client.get("/search?q=cable&category=cables&min_price=5&max_price=20").get_data(
        as_text=True
    )
    assert "/search?q=cable&amp;category=cables&amp;min_price=5&amp;max_price=20&amp;page=2" in html
    page2 = client.get("/search?q=cable&category=cables&min_price=5&max_price=20&page=2")
    listed = re.findall(r"Cable \d\d", page2.get_data(as_text=True))
    assert "30 products found" in page2.get_data(as_text=True)
    assert len(set(listed)) == 12 and not set(listed) & set(re.findall(r"Cable \d\d", html))


def test_a_category_name_inside_another_is_allowed(admin_client):
    """The book's duplicate check was a substring match: "Phone" was refused if "Phones" existed."""
    make_category("Phones")
    assert admin_client.post("/category-create", data={"name": "Phone"}).status_code == 302
    assert admin_client.post("/category-create", data={"name": "phones"}).status_code == 400


def test_disallowed_extension_is_a_form_error_not_a_crash(admin_client):
    """The book's view crashed when the upload's extension was not allowed."""
    category = make_category()
    response = post_product(admin_client, "Widget", category.id, b"MZ\x90\x00", "tool.exe")
    assert response.status_code == 400
    assert "Images only" in response.get_data(as_text=True)
    assert catalog.find_product("widget") is None


def test_text_and_pdf_files_are_not_product_images(admin_client):
    """The book accepted .txt and .pdf; content is checked, whatever the extension says."""
    category = make_category()
    for data, filename in [
        (b"just text", "notes.txt"),
        (b"%PDF-1.7\n%%EOF", "spec.pdf"),
        (b"just text pretending", "photo.png"),
        (b"%PDF-1.7\n%%EOF", "photo.jpg"),
    ]:
        response = post_product(admin_client, "Widget", category.id, data, filename)
        assert response.status_code == 400, filename
    assert catalog.find_product("widget") is None


def test_category_names_are_compared_in_any_script(admin_client):
    assert admin_client.post("/category-create", data={"name": "Наушники"}).status_code == 302
    for duplicate in ["Наушники", "НАУШНИКИ", " наушники "]:
        response = admin_client.post("/category-create", data={"name": duplicate})
        assert response.status_code == 400, duplicate
        assert "already exists" in response.get_data(as_text=True)
    assert admin_client.post("/category-create", data={"name": "Éclair"}).status_code == 302
    assert admin_client.post("/category-create", data={"name": "éclair"}).status_code == 400


def test_blank_names_are_refused(admin_client):
    category = make_category()
    assert admin_client.post("/category-create", data={"name": "   "}).status_code == 400
    response = post_product(admin_client, "    ", category.id, b"")
    assert response.status_code == 400
    assert catalog.product_page(1, per_page=5).total == 0


def test_not_a_number_prices_are_form_errors(admin_client, client):
    category = make_category()
    for price in ["NaN", "sNaN", "Infinity", "-inf"]:
        response = admin_client.post(
            "/product-create", data={"name": "Widget", "price": price, "category": category.id}
        )
        assert response.status_code == 400, price
        assert client.get(f"/search?min_price={price}").status_code == 400
        assert client.get(f"/api/products?max_price={price}").status_code == 400


def test_descriptions_keep_their_paragraphs(admin_client):
    category = make_category()
    admin_client.post(
        "/product-create",
        data={
            "name": "Widget",
            "price": "1.00",
            "category": category.id,
            "description": "First paragraph.\r\n\r\nSecond paragraph.",
        },
    )
    html = admin_client.get("/product/widget").get_data(as_text=True)
    assert "<p>First paragraph.</p><p>Second paragraph.</p>" in html.replace("\n", "")
