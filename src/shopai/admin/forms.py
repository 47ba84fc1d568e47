"""Admin forms. Field names follow the cookbook (`name`, `price`, `category`, `image`)."""

from __future__ import annotations

from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..ai.client import MAX_IMAGES
from ..catalog.models import MAX_PRICE
from ..forms import FiniteDecimalField, strip_text
from ..images.models import PROMPT_MAX

IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif"]


class CategoryForm(FlaskForm):
    name = StringField("Name", filters=[strip_text], validators=[DataRequired(), Length(max=80)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=500)])


class ProductGPTForm(FlaskForm):
    """The cookbook's `/product-create-gpt` form (no image field: the model draws one),
    and the fields every product form shares."""

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

    def validate_price(self, field: DecimalField) -> None:
        if field.data is not None and field.data != field.data.quantize(Decimal("0.01")):
            raise ValidationError("Use at most two decimals.")


class ProductForm(ProductGPTForm):
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    featured = BooleanField("Featured on the home page")
    image = FileField(
        "Image",
        validators=[FileAllowed(IMAGE_EXTENSIONS, "Images only: JPEG, PNG, WebP or GIF.")],
        description="JPEG, PNG, WebP or GIF. It is checked and re-encoded before it is stored.",
    )
    generate_image = BooleanField(
        "Generate an image",
        description="Drawn in the background after saving; the product is saved at once.",
    )
    image_prompt = TextAreaField(
        "Image prompt",
        filters=[strip_text],
        validators=[Optional(), Length(max=PROMPT_MAX)],
        description="Leave empty for the category's prompt template.",
    )
    image_count = IntegerField(
        "Images to choose from",
        default=1,
        validators=[Optional(), NumberRange(min=1, max=MAX_IMAGES)],
    )


class ImageForm(FlaskForm):
    image = FileField(
        "Image",
        validators=[
            InputRequired(message="Choose an image file."),
            FileAllowed(IMAGE_EXTENSIONS, "Images only: JPEG, PNG, WebP or GIF."),
        ],
    )
