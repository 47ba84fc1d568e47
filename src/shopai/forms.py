"""Form fields and filters shared by the blueprints' forms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from wtforms import DecimalField


def strip_text(value: Any) -> Any:
    """Leading and trailing blanks never count: "   " is no name."""
    return value.strip() if isinstance(value, str) else value


class FiniteDecimalField(DecimalField):
    """A DecimalField that refuses NaN, sNaN and Infinity, which Decimal() accepts
    and which later blow up in comparisons (a 500 instead of a form error)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        if isinstance(self.data, Decimal) and not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))
