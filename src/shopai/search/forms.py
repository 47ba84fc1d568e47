from __future__ import annotations

from collections.abc import Mapping

from flask_wtf import FlaskForm
from wtforms import DecimalField, SearchField, SelectChoice, SelectField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from ..catalog.models import MAX_PRICE
from ..catalog.services import categories, find_category
from ..forms import FiniteDecimalField
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


def search_form(args: Mapping[str, str]) -> SearchForm:
    """The search form read from a query string, with the category choices filled in."""
    form = SearchForm(formdata=args)
    form.category.choices = [ALL_CATEGORIES] + [SelectChoice(c.slug, c.name) for c in categories()]
    return form
