"""Admin forms. Field names follow the cookbook (`name`, `price`, `category`, `image`)."""

from __future__ import annotations

from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import BooleanField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..catalog.models import MAX_PRICE
from ..forms import FiniteDecimalField, strip_text

IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif"]


class CategoryForm(FlaskForm):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=80)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=500)])


class ProductForm(FlaskForm):
    name = StringField(
        "Name", filters=[strip_text], validators=[DataRequired(), Length(min=2, max=200)]
    )
    price = FiniteDecimalField(
        "Price",
        places=2,
        validators=[
            InputRequired(),
            NumberRange(min=Decimal("0.00"), max=MAX_PRICE),
        ],
    )
    category = SelectField("Category", coerce=int, validators=[InputRequired()])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    featured = BooleanField("Featured on the home page")
    image = FileField(
        "Image",
        validators=[FileAllowed(IMAGE_EXTENSIONS, "Images only: JPEG, PNG, WebP or GIF.")],
        description="JPEG, PNG, WebP or GIF. It is checked and re-encoded before it is stored.",
    )

    def validate_price(self, field: DecimalField) -> None:
        if field.data is not None and field.data != field.data.quantize(Decimal("0.01")):
            raise ValidationError("Use at most two decimals.")


class ImageForm(FlaskForm):
    image = FileField(
        "Image",
        validators=[
            InputRequired(message="Choose an image file."),
            FileAllowed(IMAGE_EXTENSIONS, "Images only: JPEG, PNG, WebP or GIF."),
        ],
    )
