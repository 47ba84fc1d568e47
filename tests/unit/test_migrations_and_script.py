import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shopai.db_setup import include_name
from shopai.extensions import db

SHOPAI = str(Path(sys.executable).with_name("shopai"))


# SQLite cannot reflect the expression index on lower(category.name); both libraries say so.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": include_name},
        )
        assert compare_metadata(context, db.metadata) == []


def run_shopai(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPAI_", "SECRET_KEY"))}
    environ.update(SHOPAI_INSTANCE_PATH=str(tmp_path), **env)
    return subprocess.run(  # noqa: S603 - our own console script
        [SHOPAI, *args], capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=60
    )


def test_console_script_sets_up_a_shop(tmp_path: Path):
    assert run_shopai("db", "upgrade", tmp_path=tmp_path, SHOPAI_ENV="development").returncode == 0
    seeded = run_shopai("seed-demo", "--if-empty", tmp_path=tmp_path, SHOPAI_ENV="development")
    assert "357 products added" in seeded.stdout
    routes = run_shopai("routes", tmp_path=tmp_path, SHOPAI_ENV="development").stdout
    for url in ["/product-create", "/category-create", "/product-search", "/api/products"]:
        assert url in routes


def test_console_script_explains_a_missing_secret_key(tmp_path: Path):
    result = run_shopai("routes", tmp_path=tmp_path, SHOPAI_ENV="production")
    assert result.returncode == 2
    assert "Configuration error: SECRET_KEY is required" in result.stderr
    assert "Traceback" not in result.stderr
