"""Forms of the suggestion endpoints and the admin page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SearchField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..forms import strip_text
from .services import DEFAULT_LIMIT, MAX_LIMIT
from .text import MAX_QUERY_CHARS

FALSE_WORDS = ("", "0", "false", "no", "off")


class SuggestArgs(FlaskForm):
    """`GET /api/suggest` parameters, read from the query string (no CSRF: a GET)."""

    class Meta:
        csrf = False

    q = StringField(validators=[Optional(), Length(max=MAX_QUERY_CHARS)])
    limit = IntegerField(
        default=DEFAULT_LIMIT, validators=[Optional(), NumberRange(min=1, max=MAX_LIMIT)]
    )
    settled = BooleanField(false_values=FALSE_WORDS)


class BookQueryForm(FlaskForm):
    """The cookbook's `/product-search-gpt` form: one field, `query` (CSRF as every form)."""

    query = SearchField(
        "Query",
        validators=[Optional(), Length(max=MAX_QUERY_CHARS)],
        render_kw={"maxlength": MAX_QUERY_CHARS},
    )


class BlockTermForm(FlaskForm):
    term = StringField(
        "Term",
        filters=[strip_text],
        validators=[DataRequired(), Length(max=MAX_QUERY_CHARS)],
        description="Hides every suggestion holding it as a whole word or phrase "
        "(Chinese and Japanese: anywhere). Case and accents do not matter.",
    )


class RemoveTermForm(FlaskForm):
    """Only the CSRF token: removing a blocked term is a POST like any change."""
