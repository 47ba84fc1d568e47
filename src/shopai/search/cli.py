"""`shopai embeddings` and `shopai search`: the product vectors and the keyword index."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from ..ai.errors import AIError
from ..extensions import db
from . import pg_index
from .embeddings import embeddings_model, refresh_embeddings, stale_product_ids


@click.group("embeddings")
def embeddings_group() -> None:
    """Product vectors for search by meaning."""


@embeddings_group.command("rebuild")
@with_appcontext
def rebuild_command() -> None:
    """Recompute every stale vector now (missing, edited product, other model)."""
    stale = stale_product_ids()
    model = embeddings_model()
    if not stale:
        click.echo(f"Every product's vector is current ({model}).")
        return
    try:
        with click.progressbar(length=len(stale), label="Embeddings", show_pos=True) as bar:
            written = refresh_embeddings(stale, who="cli:embeddings", progress=bar.update)
    except AIError as exc:
        raise click.ClickException(f"the embeddings backend failed: {exc}") from None
    click.echo(f"{written} vector(s) written with {model}.")


@click.group("search")
def search_group() -> None:
    """The keyword index of the catalog."""


@search_group.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Rewrite every product's keyword document (PostgreSQL), after writes that bypassed
    the app: SQL by hand, bulk imports. SQLite's triggers keep its index current alone."""
    if db.engine.dialect.name != "postgresql":
        click.echo("SQLite keeps its full-text index current itself: nothing to do.")
        return
    with db.engine.begin() as connection:
        pg_index.reindex(connection)
        count = connection.scalar(select(func.count()).select_from(pg_index.product_fts))
    click.echo(f"{count} product document(s) written.")
