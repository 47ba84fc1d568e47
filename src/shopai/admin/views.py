"""Admin pages; `/product-create` and `/category-create` are the book's URLs for the same views."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_wtf.file import FileStorage
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from ..auth.decorators import admin_required
from ..catalog import services as catalog
from ..catalog.models import Category, Product
from ..extensions import db
from ..images.generation import image_statuses
from ..images.services import add_uploaded_image, store_image
from ..images.storage import ImageRejected, StoredImage
from ..images.views import start_generation
from ..web import page_arg
from . import bp
from .forms import CategoryForm, ImageForm, ProductForm, ProductGPTForm

View = str | Response | tuple[str, int]


def _category_choices(form: ProductGPTForm) -> None:
    form.category.choices = [SelectChoice(c.id, c.name) for c in catalog.categories()]


def _product_fields(form: ProductForm) -> dict[str, Any]:
    return {
        "name": form.name.data or "",
        "price": form.price.data,
        "category": db.get_or_404(Category, form.category.data),
        "description": form.description.data or "",
        "featured": form.featured.data,
    }


def _save(product: Product, form: ProductForm, stored: StoredImage | None) -> tuple[str, str]:
    """Save the product with its upload and, if asked for, a request for generated
    images: one commit for the product, its image request and every job they call
    for (search vectors, shopper queries, drawing); the messages go out after it.

    Returns the name and slug as saved, read before the commit expires the row (the
    redirect needs no second load of it)."""
    catalog.save_product(product, **_product_fields(form), image=stored)
    if form.generate_image.data:
        start_generation(product, form.image_prompt.data or None, form.image_count.data or 1)
    saved = product.name, product.slug
    db.session.commit()
    return saved


def _stored_upload(form: ProductForm | ImageForm) -> StoredImage | None:
    """Verify the uploaded image, or record why not on the form field."""
    upload: FileStorage | None = form.image.data
    if not upload or not upload.filename:
        return None
    try:
        return store_image(upload.read())
    except ImageRejected as exc:
        form.image.errors = [*form.image.errors, str(exc)]
        return None


def _show_error(form: CategoryForm | ProductGPTForm, error: catalog.CatalogError) -> None:
    """A broken catalog rule, shown beside the field it concerns."""
    field = form[error.field] if error.field and error.field in form else form.name
    field.errors = [*field.errors, str(error)]


def _form_status(form: CategoryForm | ProductGPTForm | ImageForm) -> int:
    return 400 if form.is_submitted() else 200


@bp.route("/admin/")
@admin_required
def index() -> str:
    return render_template(
        "admin/index.html",
        categories=catalog.categories(),
        counts=catalog.category_product_counts(),
    )


@bp.route("/category-create", methods=["GET", "POST"])
@bp.route("/admin/categories/new", methods=["GET", "POST"])
@admin_required
def category_create() -> View:
    form = CategoryForm()
    if form.validate_on_submit():
        try:
            category = catalog.create_category(form.name.data or "", form.description.data or "")
        except catalog.CatalogError as exc:
            _show_error(form, exc)
        else:
            flash(f"Category “{category.name}” created.", "success")
            return redirect(url_for("catalog.category", key=category.slug))
    return render_template("admin/category_form.html", form=form, category=None), _form_status(form)


@bp.route("/admin/categories/<id:category_id>/edit", methods=["GET", "POST"])
@admin_required
def category_edit(category_id: int) -> View:
    category = db.get_or_404(Category, category_id)
    form = CategoryForm(obj=category)
    if form.validate_on_submit():
        try:
            catalog.update_category(category, form.name.data or "", form.description.data or "")
        except catalog.CatalogError as exc:
            _show_error(form, exc)
        else:
            flash(f"Category “{category.name}” saved.", "success")
            return redirect(url_for("admin.index"))
    return render_template("admin/category_form.html", form=form, category=category), _form_status(
        form
    )


@bp.route("/admin/categories/<id:category_id>/delete", methods=["POST"])
@admin_required
def category_delete(category_id: int) -> Response:
    category = db.get_or_404(Category, category_id)
    try:
        catalog.delete_category(category)
    except catalog.CatalogError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.category_edit", category_id=category_id))
    flash(f"Category “{category.name}” deleted.", "success")
    return redirect(url_for("admin.index"))


@bp.route("/admin/products")
@admin_required
def products() -> str:
    pagination = catalog.product_page(page_arg(), per_page=50)
    statuses = image_statuses([p.id for p in pagination.items])
    return render_template("admin/products.html", pagination=pagination, statuses=statuses)


@bp.route("/product-create", methods=["GET", "POST"])
@bp.route("/admin/products/new", methods=["GET", "POST"])
@admin_required
def product_create() -> View:
    form = ProductForm()
    _category_choices(form)
    if not form.category.choices:
        flash("Create a category first: every product belongs to one.", "warning")
        return redirect(url_for("admin.category_create"))
    if request.method == "GET" and (preselect := request.args.get("category", type=int)):
        form.category.data = preselect
    if form.validate_on_submit():
        stored = _stored_upload(form)
        if not form.image.errors:
            try:
                name, slug = _save(Product(), form, stored)
            except catalog.CatalogError as exc:
                _show_error(form, exc)
            else:
                flash(f"Product “{name}” created.", "success")
                return redirect(url_for("catalog.product", key=slug))
    return render_template("admin/product_form.html", form=form, product=None), _form_status(form)


@bp.route("/product-create-gpt", methods=["GET", "POST"])
@admin_required
def product_create_gpt() -> View:
    """The cookbook's recipe: a product without an image field, whose image the model
    draws. Saved at once; the image follows from a job."""
    form = ProductGPTForm()
    _category_choices(form)
    if not form.category.choices:
        flash("Create a category first: every product belongs to one.", "warning")
        return redirect(url_for("admin.category_create"))
    if form.validate_on_submit():
        try:
            product = catalog.save_product(
                Product(),
                name=form.name.data or "",
                price=form.price.data,
                category=db.get_or_404(Category, form.category.data),
            )
        except catalog.CatalogError as exc:
            _show_error(form, exc)
        else:
            flash(f"Product “{product.name}” created; its image is being drawn.", "success")
            start_generation(product, None, 1)
            db.session.commit()  # the product, its image request and its jobs at once
            return redirect(url_for("catalog.product", key=product.slug))
    return render_template("admin/product_create_gpt.html", form=form), _form_status(form)


@bp.route("/admin/products/<id:product_id>/edit", methods=["GET", "POST"])
@admin_required
def product_edit(product_id: int) -> View:
    product = db.get_or_404(Product, product_id)
    form = ProductForm(
        data={
            "name": product.name,
            "price": product.price,
            "category": product.category_id,
            "description": product.description,
            "featured": product.featured,
        }
    )
    _category_choices(form)
    if form.validate_on_submit():
        stored = _stored_upload(form)
        if not form.image.errors:
            try:
                name, slug = _save(product, form, stored)
            except catalog.CatalogError as exc:
                db.session.rollback()
                _show_error(form, exc)
            else:
                flash(f"Product “{name}” saved.", "success")
                return redirect(url_for("catalog.product", key=slug))
    return render_template("admin/product_form.html", form=form, product=product), _form_status(
        form
    )


@bp.route("/admin/products/<id:product_id>/image", methods=["POST"])
@admin_required
def product_image(product_id: int) -> View:
    product = db.get_or_404(Product, product_id)
    form = ImageForm()
    if form.validate_on_submit() and (stored := _stored_upload(form)) is not None:
        add_uploaded_image(product, stored)
        flash("Image uploaded.", "success")
        return redirect(url_for("catalog.product", key=product.slug))
    for error in form.image.errors:
        flash(error, "danger")
    return redirect(url_for("admin.product_edit", product_id=product.id))


@bp.route("/admin/products/<id:product_id>/delete", methods=["POST"])
@admin_required
def product_delete(product_id: int) -> Response:
    product = db.get_or_404(Product, product_id)
    catalog.delete_product(product)
    flash(f"Product “{product.name}” deleted.", "success")
    return redirect(url_for("admin.products"))
