"""Admin forms of generated images."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..ai.client import MAX_IMAGES
from ..forms import strip_text
from .models import PROMPT_MAX


class GenerateImagesForm(FlaskForm):
    prompt = TextAreaField(
        "Prompt", filters=[strip_text], validators=[DataRequired(), Length(max=PROMPT_MAX)]
    )
    count = IntegerField(
        "Images", default=2, validators=[InputRequired(), NumberRange(min=1, max=MAX_IMAGES)]
    )


class PromptTemplateForm(FlaskForm):
    template = TextAreaField(
        "Prompt template",
        filters=[strip_text],
        validators=[Optional(), Length(max=PROMPT_MAX)],
        description="Placeholders: {name}, {category}, {description}. Empty: the default.",
    )
