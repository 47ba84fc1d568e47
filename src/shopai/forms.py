"""Form fields and filters shared by the blueprints' forms."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from wtforms import DecimalField


def strip_text(value: Any) -> Any:
    """Leading and trailing blanks never count: "   " is no name."""
    return value.strip() if isinstance(value, str) else value


class FiniteDecimalField(DecimalField):
    """A DecimalField that refuses what Decimal() accepts but later blows up (a 500
    instead of a form error): NaN, sNaN and Infinity fail comparisons, and numbers
    too long to round to `places` ("1e26") fail `quantize`, which the field itself
    calls to redisplay the value."""

    data: Any

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        value = self.data
        if not isinstance(value, Decimal):
            return
        if not value.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))
        if self.places is not None:
            try:
                value.quantize(Decimal(1).scaleb(-self.places))
            except InvalidOperation:
                self.data = None
                raise ValueError(self.gettext("Number is too large.")) from None
