from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DecimalField, SearchField, SelectChoice, SelectField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from ..catalog.models import MAX_PRICE, Category
from ..catalog.services import find_category
from ..extensions import db
from ..forms import FiniteDecimalField
from ..page_cache import catalog_generation
from .services import SORTS, SearchFilters

ALL_CATEGORIES = SelectChoice("", "All categories")


class SearchForm(FlaskForm):
    """Read from the query string; GET searches change nothing, so no CSRF token."""

    class Meta:
        csrf = False

    q = SearchField("Search", validators=[Optional(), Length(max=200)])
    category = SelectField("Category", choices=[ALL_CATEGORIES], validate_choice=False)
    min_price = FiniteDecimalField(
        "Min price", places=2, validators=[Optional(), NumberRange(min=0, max=MAX_PRICE)]
    )
    max_price = FiniteDecimalField(
        "Max price", places=2, validators=[Optional(), NumberRange(min=0, max=MAX_PRICE)]
    )
    sort = SelectField(
        "Sort by",
        choices=[SelectChoice(value, label) for value, label in SORTS.items()],
        default="relevance",
    )

    def validate_max_price(self, field: DecimalField) -> None:
        low = self.min_price.data
        if field.data is not None and low is not None and field.data < low:
            raise ValidationError("Max price must not be below min price.")

    def filters(self) -> SearchFilters:
        """The validated form as service input; call after `validate()`."""
        category = find_category(self.category.data) if self.category.data else None
        if self.category.data and category is None:
            self.category.errors = [*self.category.errors, "No such category."]
        return SearchFilters(
            q=(self.q.data or "").strip(),
            category=category,
            min_price=self.min_price.data,
            max_price=self.max_price.data,
            sort=self.sort.data if self.sort.data in SORTS else "relevance",
        )


# Built once: two columns, not category objects.
_CATEGORY_CHOICES = select(Category.slug, Category.name).order_by(Category.name)
CHOICES_KEY = "shopai.search.category_choices"
CHOICES_RECHECK_SECONDS = 2.0
clock = time.monotonic


@dataclass(frozen=True)
class _Choices:
    generation: int
    read_at: float
    choices: tuple[SelectChoice, ...]


def category_choices() -> list[SelectChoice]:
    """The category filter's choices. Read again at once when this process changed the
    catalog (`page_cache.catalog_generation`), and otherwise at most every
    `CHOICES_RECHECK_SECONDS` (other processes' changes): read on every search, they
    were a statement of their own in each."""
    generation, now = catalog_generation(), clock()  # before reading: a change wins
    kept: _Choices | None = current_app.extensions.get(CHOICES_KEY)
    if (
        kept is None
        or kept.generation != generation
        or now - kept.read_at >= CHOICES_RECHECK_SECONDS
    ):
        rows = db.session.execute(_CATEGORY_CHOICES)
        choices = (ALL_CATEGORIES, *(SelectChoice(slug, name) for slug, name in rows))
        kept = current_app.extensions[CHOICES_KEY] = _Choices(generation, now, choices)
    return list(kept.choices)


def search_form(args: Mapping[str, str]) -> SearchForm:
    """The search form read from a query string, with the category choices filled in."""
    form = SearchForm(formdata=args)
    form.category.choices = category_choices()
    return form
