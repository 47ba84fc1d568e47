from ..factories import make_category, make_product


def test_products_are_paginated_and_filterable(client, app):
    audio, laptops = make_category("Headphones"), make_category("Laptops")
    make_product("Kestrel K7", "199.00", audio)
    make_product("Kestrel Buds", "59.00", audio)
    make_product("Altura Book", "899.00", laptops)

    body = client.get("/api/products?per_page=2").get_json()
    assert body["total"] == 3 and body["pages"] == 2 and len(body["items"]) == 2

    body = client.get("/api/products?q=kestrel&max_price=100").get_json()
    assert [item["name"] for item in body["items"]] == ["Kestrel Buds"]
    assert body["items"][0]["price"] == "59.00"
    assert body["items"][0]["url"].endswith("/product/kestrel-buds")

    body = client.get("/api/products?category=laptops").get_json()
    assert [item["name"] for item in body["items"]] == ["Altura Book"]
    assert client.get(f"/api/products?category={laptops.id}").get_json()["total"] == 1


def test_product_detail_and_categories(client, app):
    product = make_product()
    body = client.get(f"/api/products/{product.id}").get_json()
    assert body["name"] == product.name and body["image"] is None
    categories = client.get("/api/categories").get_json()["items"]
    assert categories[0]["slug"] == "headphones"


def test_errors_are_json(client, app):
    response = client.get("/api/products/999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404

    response = client.get("/api/products?min_price=cheap&category=nope")
    assert response.status_code == 400
    fields = response.get_json()["error"]["fields"]
    assert "min_price" in fields and "category" in fields


def test_per_page_is_capped(client, app):
    category = make_category()
    for n in range(3):
        make_product(f"P{n}", category=category)
    assert client.get("/api/products?per_page=100000").get_json()["per_page"] == 100


def test_api_is_read_only(client, app):
    assert client.post("/api/products").status_code in (400, 405)
    assert client.delete("/api/products/1").status_code == 405
    assert client.delete("/api/products/1").is_json


def test_json_clients_get_json_errors_outside_the_api(client, app):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"]["name"] == "Not Found"
