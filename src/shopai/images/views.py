"""Stored images, and the admin's side of generated ones: asking, picking, templates."""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from ..auth.decorators import admin_required
from ..catalog import services as catalog
from ..catalog.models import Category, Product
from ..extensions import db
from ..web import within_rate
from . import bp
from .forms import GenerateImagesForm, PromptTemplateForm
from .generation import (
    DEFAULT_TEMPLATE,
    ImageRequestRefused,
    PromptTemplateError,
    add_image_request,
    candidates,
    default_prompt,
    latest_request,
    pick,
    set_template,
    template_for,
)

ONE_YEAR = 365 * 24 * 3600
RATE_SCOPE = "images-generate"


@bp.route("/media/<path:filename>")
def media(filename: str) -> Response:
    """Serve a stored image. Names are content hashes, so they can be cached forever."""
    response = send_from_directory(
        current_app.config["SHOPAI_UPLOAD_DIR"], filename, max_age=ONE_YEAR
    )
    response.cache_control.immutable = True
    return response


def start_generation(product: Product, prompt: str | None, n: int) -> bool:
    """Ask for images of a product in the view's unit of work (the caller commits the
    request and its job, with the product when it was just saved), telling the admin
    (flash) if it was refused. A refusal adds nothing: the product is saved either way."""
    admin = current_user.get_id()
    # Per admin: each request may cost real money.
    if not within_rate("SHOPAI_IMAGES_RATE_LIMIT", RATE_SCOPE, f"admin:{admin}"):
        flash("Too many image requests: wait a little before asking for more.", "warning")
        return False
    try:
        add_image_request(product, prompt=prompt, n=n, requested_by=f"user:{admin}")
    except ImageRequestRefused as exc:
        flash(f"No image was requested: {exc}", "warning")
        return False
    flash("The image is being drawn; it will appear here when it is ready.", "info")
    return True


@bp.route("/admin/products/<id:product_id>/images", methods=["GET", "POST"])
@admin_required
def product_images(product_id: int) -> str | Response | tuple[str, int]:
    """Candidates to pick from, and a form to draw more with an edited prompt."""
    product = db.get_or_404(Product, product_id)
    form = GenerateImagesForm()
    if request.method == "GET":
        last = latest_request(product.id)
        form.prompt.data = last.prompt if last else default_prompt(product)
    if form.validate_on_submit():
        start_generation(product, form.prompt.data, form.count.data or 1)  # flashes a refusal
        db.session.commit()
        return redirect(url_for("images.product_images", product_id=product.id))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "images/product_images.html",
        product=product,
        form=form,
        candidates=candidates(product),
    ), status


@bp.route("/admin/products/<id:product_id>/images/<id:image_id>/choose", methods=["POST"])
@admin_required
def choose(product_id: int, image_id: int) -> Response:
    product = db.get_or_404(Product, product_id)
    if pick(product, image_id) is None:
        flash("That image is not one of this product's.", "danger")
    else:
        flash("Image chosen.", "success")
    return redirect(url_for("images.product_images", product_id=product.id))


@bp.route("/admin/images/prompts", methods=["GET"])
@admin_required
def prompt_templates() -> str:
    categories = catalog.categories()
    return render_template(
        "images/prompt_templates.html",
        rows=[(c, template_for(c)) for c in categories],
        default=DEFAULT_TEMPLATE,
        form=PromptTemplateForm(),
    )


@bp.route("/admin/images/prompts/<id:category_id>", methods=["POST"])
@admin_required
def set_prompt_template(category_id: int) -> Response | tuple[str, int]:
    category = db.get_or_404(Category, category_id)
    form = PromptTemplateForm()
    if form.validate_on_submit():
        try:
            set_template(category, form.template.data or "")
        except PromptTemplateError as exc:
            flash(f"“{category.name}”: {exc}", "danger")
        else:
            flash(f"Prompt template of “{category.name}” saved.", "success")
    else:
        for error in form.template.errors:
            flash(f"“{category.name}”: {error}", "danger")
    return redirect(url_for("images.prompt_templates"))
