"""Product images drawn by a model, as background jobs.

Saving a product never waits for a model: `add_image_request` records an `ImageRequest`
and its `images.generate` job with the product, so the admin's request returns at once. The
job asks the AI client for `n` images (the configured image model, or the offline
renderer), verifies and re-encodes each one like an upload, stores it under its
content hash and attaches it to the product as a candidate with its provenance. The
first one is shown at once only for a product that has no image yet; otherwise the
admin picks. A backend that fails or returns junk fails the attempt with a readable
reason and the job system retries with backoff; the product itself is never touched
by a failure and keeps its placeholder.

A job re-run after a crash finds the images its request already attached (by the
request id) and only draws what is missing, so a re-run leaves one set of images.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..ai.client import MAX_IMAGES
from ..ai.errors import AIError, AIRequestRefused
from ..ai_service import ai_client
from ..catalog.models import Category, Product
from ..db_types import utcnow
from ..extensions import db
from ..jobs import JobContext, PermanentJobError, add_job, job_handler
from ..jobs.models import Job, JobStatus
from ..templating import money
from ..usage.budget import start_of_day
from .models import PROMPT_MAX, CategoryImagePrompt, ImageRequest, ProductImage
from .services import Provenance, attach_image, choose_image, store_image
from .storage import ImageRejected

log = logging.getLogger(__name__)

# The cookbook's own prompt, with the product's fields as placeholders.
DEFAULT_TEMPLATE = (
    "Generate an image for a {name} on a white background for a classy e-commerce store listing"
)
FIELDS = ("name", "category", "description")
IMAGE_STATUSES = ("none", "queued", "running", "succeeded", "failed")


class ImageRequestRefused(Exception):
    """The request cannot be made (budget spent, bad prompt); the message is for the admin."""


class PromptTemplateError(ValueError):
    """A template with an unknown placeholder or a stray brace; the message says which."""


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def check_template(template: str) -> str:
    """A template may use {name}, {category} and {description}, nothing else: they are
    replaced as plain text (no str.format, whose format specs and attribute lookups a
    template could otherwise reach)."""
    template = template.strip()
    if not template:
        raise PromptTemplateError("The template is empty.")
    if len(template) > PROMPT_MAX:
        raise PromptTemplateError(f"Templates are limited to {PROMPT_MAX} characters.")
    unknown = [f for f in _PLACEHOLDER.findall(template) if f not in FIELDS]
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in FIELDS)
        raise PromptTemplateError(f"Unknown placeholder {{{unknown[0]}}}: use {allowed}.")
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise PromptTemplateError("The template has a stray brace.")
    return template


def fill_template(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def template_for(category: Category) -> str:
    row = db.session.get(CategoryImagePrompt, category.id)
    return row.template if row else DEFAULT_TEMPLATE


def set_template(category: Category, template: str) -> None:
    """Set (or, with an empty template, reset to the default) a category's template."""
    row = db.session.get(CategoryImagePrompt, category.id)
    if not template.strip():
        if row is not None:
            db.session.delete(row)
    elif row is None:
        db.session.add(
            CategoryImagePrompt(category_id=category.id, template=check_template(template))
        )
    else:
        row.template = check_template(template)
    db.session.commit()


def default_prompt(product: Product) -> str:
    """The product's prompt from its category's template."""
    values: Mapping[str, str] = {
        "name": product.name,
        "category": product.category.name,
        "description": " ".join(product.description.split())[:300],
    }
    return fill_template(template_for(product.category), values)[:PROMPT_MAX]


def images_today() -> int:
    """Images asked of a model today: drawn, being drawn or waiting (a request reserves
    its images, so requests made at the same moment cannot all pass the budget).
    Failed requests give theirs back."""
    reserved = db.session.scalar(
        select(func.coalesce(func.sum(ImageRequest.n), 0))
        .join(Job, Job.id == ImageRequest.job_id)
        .where(
            ImageRequest.created_at >= start_of_day(),
            Job.status.not_in((JobStatus.FAILED.value, JobStatus.CANCELLED.value)),
        )
    )
    return int(reserved or 0)


def _check_budget(n: int) -> None:
    """The daily budget of images drawn by a model (the offline renderer is free)."""
    if current_app.config["SHOPAI_AI"].feature("images").backend == "renderer":
        return
    limit = current_app.config["SHOPAI_IMAGES_DAILY_LIMIT"]
    if images_today() + n > limit:
        raise ImageRequestRefused(
            f"Today's image budget ({limit} images) is spent; try again tomorrow "
            "or raise SHOPAI_IMAGES_DAILY_LIMIT."
        )


def request_images(
    product: Product,
    *,
    prompt: str | None = None,
    n: int = 1,
    choose_first: bool | None = None,
    requested_by: str | None = None,
) -> ImageRequest:
    """Ask for `n` generated images of `product` (in a job); returns at once, committed.
    See `add_image_request`."""
    request = add_image_request(
        product, prompt=prompt, n=n, choose_first=choose_first, requested_by=requested_by
    )
    db.session.commit()
    return request


def add_image_request(
    product: Product,
    *,
    prompt: str | None = None,
    n: int = 1,
    choose_first: bool | None = None,
    requested_by: str | None = None,
) -> ImageRequest:
    """Ask for `n` generated images of `product` in the caller's unit of work: the
    request and its `images.generate` job are committed with it (a new product, its
    request and its job in one commit; see `jobs.add_job`). A refusal is raised
    before anything is added, so the rest of the unit of work can still be committed.

    `choose_first` defaults to "the product has no image yet", so a new product gets
    its image without anyone picking, and a product that has one keeps it until the
    admin chooses a candidate."""
    if not 1 <= n <= MAX_IMAGES:
        raise ImageRequestRefused(f"Ask for between 1 and {MAX_IMAGES} images.")
    prompt = " ".join((prompt or default_prompt(product)).split())
    if not prompt:
        raise ImageRequestRefused("The prompt is empty.")
    if len(prompt) > PROMPT_MAX:
        raise ImageRequestRefused(f"Prompts are limited to {PROMPT_MAX} characters.")
    _check_budget(n)
    request = ImageRequest(
        product_id=product.id,
        prompt=prompt,
        n=n,
        choose_first=product.image is None if choose_first is None else choose_first,
        requested_by=requested_by,
    )
    db.session.add(request)
    db.session.flush()  # the job's key and payload name the request
    job = add_job("images.generate", {"request_id": request.id}, key=f"images:{request.id}")
    request.job_id = job.id
    return request


def latest_request(product_id: int) -> ImageRequest | None:
    return db.session.scalar(
        select(ImageRequest)
        .where(ImageRequest.product_id == product_id)
        .order_by(ImageRequest.id.desc())
        .limit(1)
    )


def image_status(product_id: int) -> str:
    """none, queued, running, succeeded or failed: the state of the product's latest
    image request (a cancelled job counts as failed: no image is coming)."""
    request = latest_request(product_id)
    if request is None or request.job is None:
        return "none"
    status = request.job.status
    if status == JobStatus.CANCELLED.value:
        return "failed"
    return status if status in IMAGE_STATUSES else "queued"


def image_statuses(product_ids: list[int]) -> dict[int, str]:
    """`image_status` for many products in one query (the admin product list)."""
    if not product_ids:
        return {}
    latest = (
        select(func.max(ImageRequest.id))
        .where(ImageRequest.product_id.in_(product_ids))
        .group_by(ImageRequest.product_id)
    )
    rows = db.session.execute(
        select(ImageRequest.product_id, Job.status)
        .join(Job, Job.id == ImageRequest.job_id)
        .where(ImageRequest.id.in_(latest))
    ).all()
    found = {
        pid: ("failed" if status == JobStatus.CANCELLED.value else status) for pid, status in rows
    }
    return {pid: found.get(pid, "none") for pid in product_ids}


def candidates(product: Product) -> list[ProductImage]:
    """Generated images the admin may pick from, newest first."""
    return [i for i in reversed(product.images) if i.source in ("ai", "renderer")]


def pick(product: Product, image_id: int) -> ProductImage | None:
    image = next((i for i in product.images if i.id == image_id), None)
    if image is None:
        return None
    choose_image(product, image)
    product.updated_at = utcnow()  # a catalog change: cached pages everywhere are renewed
    db.session.commit()
    return image


# -- the job ------------------------------------------------------------------------------


# Below every other kind: drawing takes seconds to minutes, and a shop seeding hundreds
# of images must still compute a new product's search vector first.
@job_handler("images.generate", priority=-10)
def generate(ctx: JobContext, payload: dict[str, Any]) -> None:
    request = db.session.get(ImageRequest, payload.get("request_id"))
    if request is None:
        raise PermanentJobError("the image request no longer exists (its product was deleted)")
    product = db.session.get(Product, request.product_id)
    if product is None:
        raise PermanentJobError("the product was deleted")
    done = [i for i in product.images if i.request_id == request.id]
    missing = request.n - len(done)
    ctx.progress(len(done), request.n, "drawing")
    if missing <= 0:
        return  # a re-run after the images were attached: nothing left to do
    prompt, title = request.prompt, product.name
    subtitle = f"{product.category.name} · {money(product.price)}"
    request_id, product_id, n, choose_first = (
        request.id,
        product.id,
        request.n,
        request.choose_first,
    )
    db.session.commit()  # no transaction stays open while the model draws
    try:
        images = ai_client().generate_images(
            prompt,
            n=missing,
            size=current_app.config["SHOPAI_IMAGES_SIZE"],
            title=title,
            subtitle=subtitle,
            seed=request_id * MAX_IMAGES + len(done),
            who=f"job:{ctx.job_id}",
        )
    except AIRequestRefused as exc:
        raise PermanentJobError(str(exc)) from exc
    except AIError as exc:
        raise RuntimeError(f"the image backend failed: {exc}") from exc
    stored = []
    for index, image in enumerate(images, start=1):
        try:
            stored.append((image, store_image(image.data)))
        except ImageRejected as exc:
            raise RuntimeError(f"image {index} of {len(images)} was rejected: {exc}") from exc
    product = db.session.get(Product, product_id)
    if product is None:
        raise PermanentJobError("the product was deleted while its images were drawn")
    choose = choose_first and not done and product.image is None
    for image, file in stored:
        attached = attach_image(
            product,
            file,
            source="ai" if image.backend != "renderer" else "renderer",
            provenance=Provenance(image.backend, image.model, image.prompt, image.seed),
            chosen=choose,
        )
        attached.request_id = request_id
        choose = False
    product.updated_at = utcnow()
    db.session.commit()
    ctx.progress(n, n, f"{len(stored)} image(s) attached")


ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def products_missing_images() -> list[int]:
    """Products with no image shown and no image request under way."""
    shown = select(ProductImage.product_id).where(ProductImage.chosen)
    under_way = (
        select(ImageRequest.product_id)
        .join(Job, Job.id == ImageRequest.job_id)
        .where(Job.status.in_(ACTIVE))
    )
    return list(
        db.session.scalars(
            select(Product.id)
            .where(Product.id.not_in(shown), Product.id.not_in(under_way))
            .order_by(Product.id)
        )
    )


def image_jobs_under_way() -> list[int]:
    """Image jobs queued or running (say, the demo's, queued by `seed-demo`)."""
    return list(
        db.session.scalars(
            select(Job.id).where(Job.kind == "images.generate", Job.status.in_(ACTIVE))
        )
    )


def request_missing(
    requested_by: str, progress: Callable[[list[int], str], Any] | None = None
) -> tuple[list[int], str | None]:
    """One image request for every product without an image (see `request_images`).
    Returns the job ids, and why it stopped early (the daily budget) if it did."""
    ids = products_missing_images()
    jobs: list[int] = []
    with progress(ids, "Queueing") if progress else nullcontext(ids) as items:
        for product_id in items:
            product = db.session.get(Product, product_id)
            if product is None:
                continue
            try:
                request = request_images(product, choose_first=True, requested_by=requested_by)
            except ImageRequestRefused as exc:
                return jobs, str(exc)
            if request.job_id is not None:
                jobs.append(request.job_id)
    return jobs, None
