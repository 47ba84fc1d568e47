"""`shopai suggest`: model-made shopper queries for the whole catalog."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..ai.errors import AIBadResponse, AIError
from ..catalog.models import Product
from ..extensions import db
from .models import ProductQuery
from .tasks import OverBudget, generate_product_queries


@click.group("suggest")
def suggest_group() -> None:
    """Search suggestions."""


@suggest_group.command("rebuild")
@click.option("--missing", is_flag=True, help="Only products that have no shopper queries yet.")
@with_appcontext
def rebuild_command(missing: bool) -> None:
    """Ask the model for each product's shopper queries and keep those that find it."""
    query = select(Product.id).order_by(Product.id)
    if missing:
        query = query.where(~Product.id.in_(select(ProductQuery.product_id)))
    ids = list(db.session.scalars(query))
    kept = junk = 0
    with click.progressbar(ids, label="Shopper queries", show_pos=True) as bar:
        for product_id in bar:
            try:
                kept += generate_product_queries(product_id, who="cli:suggest")
            except AIBadResponse:
                junk += 1
            except OverBudget as exc:
                raise click.ClickException(str(exc)) from None
            except AIError as exc:
                raise click.ClickException(f"the model backend failed: {exc}") from None
    click.echo(
        f"{kept} verified queries kept for {len(ids)} product(s); "
        f"{junk} unusable repl{'y' if junk == 1 else 'ies'} skipped."
    )
