import io

import pytest

from shopai.catalog import services as catalog
from shopai.catalog.models import Product
from shopai.extensions import db

from ..factories import image_bytes, make_category, make_product


def upload(data: bytes, filename: str = "photo.png") -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), filename


@pytest.mark.parametrize(
    "url",
    ["/admin/", "/admin/products", "/admin/products/new", "/product-create", "/category-create"],
)
def test_admin_pages_need_a_login(client, app, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_non_admin_users_are_forbidden(client, app):
    from shopai.auth.models import User

    user = User(email="shopper@example.com", is_admin=False)
    user.set_password("a long enough password")
    db.session.add(user)
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": "a long enough password"})
    assert client.get("/admin/").status_code == 403
    assert client.post("/category-create", data={"name": "X"}).status_code == 403
    assert catalog.categories() == []


def test_wrong_password_is_refused(client, admin):
    response = client.post("/login", data={"email": admin.email, "password": "nope nope nope"})
    assert response.status_code == 400
    assert "Wrong email or password" in response.get_data(as_text=True)


def test_login_redirect_stays_on_site(client, admin):
    data = {"email": admin.email, "password": "correct horse battery"}
    response = client.post("/login?next=https://evil.example/", data=data)
    assert response.headers["Location"] == "/admin/"
    response = client.post("/login?next=//evil.example/", data=data)
    assert response.headers["Location"] == "/admin/"
    response = client.post("/login?next=/admin/products", data=data)
    assert response.headers["Location"] == "/admin/products"


def test_create_edit_and_delete_a_category(admin_client):
    response = admin_client.post("/admin/categories/new", data={"name": "Drones"})
    assert response.headers["Location"] == "/category/drones"
    category = catalog.find_category("drones")
    response = admin_client.post(
        f"/admin/categories/{category.id}/edit", data={"name": "Camera Drones"}
    )
    assert response.status_code == 302
    assert category.slug == "camera-drones"
    admin_client.post(f"/admin/categories/{category.id}/delete")
    assert catalog.categories() == []


def test_book_category_create_url_and_field(admin_client):
    response = admin_client.post("/category-create", data={"name": "Phones"})
    assert response.status_code == 302
    assert catalog.find_category("phones") is not None


def test_duplicate_category_is_a_form_error(admin_client):
    make_category("Phones")
    response = admin_client.post("/admin/categories/new", data={"name": "PHONES"})
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)


def test_category_with_products_is_kept(admin_client):
    product = make_product()
    response = admin_client.post(f"/admin/categories/{product.category.id}/delete")
    assert response.status_code == 302
    assert catalog.find_category(product.category.id) is not None
    follow = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "still holds 1 product" in follow


def test_create_product_with_image_through_book_url(admin_client, app):
    category = make_category("Headphones")
    response = admin_client.post(
        "/product-create",
        data={
            "name": "Kestrel K7",
            "price": "199.99",
            "category": str(category.id),
            "description": "Over-ear.",
            "image": upload(image_bytes()),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    product = catalog.find_product("kestrel-k7")
    assert str(product.price) == "199.99"
    assert product.image is not None and product.image.source == "upload"
    html = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert product.image.path in html


def test_invalid_product_form_keeps_what_was_typed(admin_client):
    category = make_category()
    response = admin_client.post(
        "/admin/products/new",
        data={"name": "Typed name", "price": "-5", "category": str(category.id)},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'value="Typed name"' in html
    assert "Number must be between" in html
    assert db.session.scalar(db.select(db.func.count(Product.id))) == 0


def test_price_with_three_decimals_is_refused(admin_client):
    category = make_category()
    response = admin_client.post(
        "/admin/products/new",
        data={"name": "Cable", "price": "1.999", "category": str(category.id)},
    )
    assert response.status_code == 400


def test_edit_product_and_replace_image(admin_client):
    product = make_product()
    response = admin_client.post(
        f"/admin/products/{product.id}/edit",
        data={
            "name": "Renamed",
            "price": "10.00",
            "category": str(product.category_id),
            "image": upload(image_bytes(color=(0, 200, 0))),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert product.name == "Renamed" and product.image is not None


def test_upload_image_endpoint(admin_client):
    product = make_product()
    response = admin_client.post(
        f"/admin/products/{product.id}/image",
        data={"image": upload(image_bytes("JPEG"), "p.jpg")},
        content_type="multipart/form-data",
    )
    assert response.headers["Location"] == f"/product/{product.slug}"
    assert product.image is not None


def test_delete_product(admin_client):
    product = make_product()
    response = admin_client.post(f"/admin/products/{product.id}/delete")
    assert response.status_code == 302
    assert catalog.find_product(product.id) is None


def test_oversized_upload_is_refused_cleanly(admin_client, app):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    product = make_product()
    response = admin_client.post(
        f"/admin/products/{product.id}/image",
        data={"image": upload(b"\0" * 20_000)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "Too Large" in response.get_data(as_text=True)
