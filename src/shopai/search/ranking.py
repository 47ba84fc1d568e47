"""The order of full-text results, and one page of it, without scoring every match.

Products whose name holds every word come first, ranked by how well the name
matches; the other matches follow, ranked over every field (`keyword.tier`). The
full-text index scores each match before it can sort them (FTS5's bm25, a few
microseconds each), so a broad word ("smart": a quarter of 10,000 products) cost the
search page more than everything else it does. Without filters, each tier therefore
ranks its newest `WINDOW` matches only, and its older matches follow, newest first:
a page costs at most two windows' scoring, however broad the word. (Names that all
hold the words differ mostly in length, so a window of eight pages loses little.)
Filters narrow the matches, and then every one is ranked. The order is total (ties
by id), so pages never repeat or skip a product.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func

from ..extensions import db
from . import keyword

WINDOW = 100


@dataclass(frozen=True)
class _Run:
    """A stretch of the order: `ids` (one column, ordered) of which there are `size`."""

    ids: Select[Any]
    size: int


def window_floor(tier: keyword.Tier) -> ColumnElement[Any]:
    """The smallest id of the tier's newest `WINDOW` matches (0 when it has fewer): an
    id range the index reads alone, unlike a list of ids."""
    newest = tier.ids.order_by(tier.id.desc()).limit(1).offset(WINDOW - 1)
    return func.coalesce(newest.scalar_subquery(), 0)


def ranked_window(tier: keyword.Tier, *, windowed: bool) -> Select[Any]:
    """The tier's (windowed) matches, best first, with `id` and `score` columns."""
    ids = tier.ids.add_columns(tier.score.label("score"))
    if windowed:
        ids = ids.where(tier.id >= window_floor(tier))
    return ids.order_by(tier.score, tier.id)


def _runs(tier: keyword.Tier, size: int, windowed: bool) -> Iterator[_Run]:
    if not windowed or size <= WINDOW:
        yield _Run(ranked_window(tier, windowed=False), size)
        return
    floor = window_floor(tier)
    yield _Run(ranked_window(tier, windowed=True), WINDOW)
    yield _Run(tier.ids.where(tier.id < floor).order_by(tier.id.desc()), size - WINDOW)


def page_ids(
    matching: Select[Any] | None,
    counted: Select[Any] | None,
    q: str,
    total: int,
    offset: int,
    limit: int,
) -> list[int]:
    """Ids of the `limit` matches from `offset` in the order above. `matching` selects
    the ids of `Product` within the filters (None: no filters), `counted` counts them,
    and `total` is how many match."""
    windowed = matching is None
    in_names = keyword.count(counted, q, in_names=True)
    runs = [
        *_runs(keyword.tier(matching, q, names=True), in_names, windowed),
        *_runs(keyword.tier(matching, q, names=False), total - in_names, windowed),
    ]
    ids: list[int] = []
    for run in runs:
        if offset >= run.size:
            offset -= run.size
            continue
        wanted = min(limit - len(ids), run.size - offset)
        ids += db.session.scalars(run.ids.offset(offset).limit(wanted))
        offset = 0
        if len(ids) >= limit:
            break
    return ids
