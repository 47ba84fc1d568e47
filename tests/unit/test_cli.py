from sqlalchemy import func, select

from shopai.auth.models import User
from shopai.catalog.models import Category, Product
from shopai.demo import read_demo_catalog
from shopai.extensions import db


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_demo_catalog_is_large_and_consistent():
    data = read_demo_catalog()
    category_names = {c["name"] for c in data["categories"]}
    assert len(category_names) >= 12
    assert len(data["products"]) >= 300
    assert all(p["category"] in category_names and p["description"] for p in data["products"])


def test_seed_demo_is_idempotent(runner, app):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    products, categories = count(Product), count(Category)
    assert products >= 300 and categories >= 12
    again = runner.invoke(args=["seed-demo"])
    assert f"0 products added, {products} already present" in again.output
    assert count(Product) == products and count(Category) == categories


def test_seed_demo_if_empty_leaves_a_real_catalog_alone(runner, app):
    from ..factories import make_product

    make_product()
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "already has products" in result.output
    assert count(Product) == 1


def test_create_admin_non_interactive(runner, app):
    result = runner.invoke(
        args=["create-admin", "--email", "Boss@Example.com", "--password", "a long password"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert user.email == "boss@example.com" and user.is_admin
    assert "Admins: boss@example.com" in runner.invoke(args=["admins"]).output


def test_create_admin_prompts_without_echo(runner, app):
    result = runner.invoke(
        args=["create-admin"], input="a@example.com\nanother password\nanother password\n"
    )
    assert result.exit_code == 0, result.output
    assert "another password" not in result.output


def test_create_admin_refuses_weak_input(runner, app):
    result = runner.invoke(
        args=["create-admin", "--email", "nope", "--password", "a long password"]
    )
    assert result.exit_code != 0
    result = runner.invoke(args=["create-admin", "--email", "a@example.com", "--password", "short"])
    assert result.exit_code != 0 and "at least 10" in result.output
    assert count(User) == 0


def test_admins_says_how_to_create_one(runner, app):
    assert "shopai create-admin" in runner.invoke(args=["admins"]).output
