"""`shopai embeddings`: the product vectors behind search by meaning."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..ai.errors import AIError
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
