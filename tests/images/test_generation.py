"""Generated product images: requested in milliseconds, drawn by a job, verified,
stored by content hash, picked by the admin; failures retried, then reported."""

from __future__ import annotations

import struct
import zlib

import pytest
from sqlalchemy import event, func, select

from shopai.ai_service import flush_usage
from shopai.catalog.models import Product
from shopai.extensions import db
from shopai.images.generation import (
    DEFAULT_TEMPLATE,
    ImageRequestRefused,
    image_status,
    request_images,
    set_template,
)
from shopai.images.models import ImageRequest, ProductImage
from shopai.jobs import execute_job, jobs_runtime
from shopai.jobs.models import Job
from shopai.usage.models import UsageRecord

from ..factories import make_category, make_product
from ..jobs.conftest import fresh
from .conftest import image_settings, png, running

GENERATIONS = "/images/generations"


def latest_job() -> Job:
    job = db.session.scalar(
        select(Job).where(Job.kind == "images.generate").order_by(Job.id.desc())
    )
    assert job is not None
    return job


def run_latest() -> Job:
    job = latest_job()
    execute_job(job.id)
    return fresh(job.id)


def stored_files(shop) -> list:
    from pathlib import Path

    return sorted(p for p in Path(shop.config["SHOPAI_UPLOAD_DIR"]).rglob("*.webp"))


def product_named(name: str) -> Product:
    product = db.session.scalar(select(Product).where(Product.name == name))
    assert product is not None
    return product


@pytest.fixture
def headphones(shop):
    return make_category("Headphones")


def test_creating_a_product_with_an_image_returns_before_it_is_drawn(
    admin_client, fake_ai, headphones
):
    fake_ai.delay_next(2, kind="images")
    fake_ai.reply_image_b64(png())
    response = admin_client.post(
        "/admin/products/new",
        data={
            "name": "Kestrel K7",
            "price": "199.00",
            "category": headphones.id,
            "generate_image": "y",
            "image_count": "1",
        },
    )
    assert response.status_code == 302
    assert fake_ai.requests_to(GENERATIONS) == []  # nothing drawn while the admin waited
    product = product_named("Kestrel K7")
    assert image_status(product.id) == "queued"
    api = admin_client.get(f"/api/products/{product.id}").get_json()
    assert (api["image_status"], api["image_url"]) == ("queued", None)

    assert run_latest().status == "succeeded"
    db.session.expire_all()
    image = product.image
    assert image is not None and image.ai_generated and image.source == "ai"
    assert (image.backend, image.model) == ("openai", "gpt-image-1-mini")
    assert image.prompt == DEFAULT_TEMPLATE.format(name="Kestrel K7")
    api = admin_client.get(f"/api/products/{product.id}").get_json()
    assert api["image_status"] == "succeeded" and api["image_ai_generated"] is True
    assert api["image_url"].endswith(f"{image.content_hash}.webp")
    assert api["thumbnail_url"].endswith(f"{image.content_hash}-thumb.webp")
    page = admin_client.get(f"/product/{product.slug}").get_data(as_text=True)
    assert image.content_hash in page


def test_a_product_its_image_request_and_its_jobs_are_committed_together(
    shop, admin_client, fake_ai, headphones
):
    """One commit: no moment (or crash) leaves a saved product without the jobs it
    calls for; their messages are sent once it is committed."""
    commits = []
    listener = lambda _conn: commits.append(1)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    try:
        response = admin_client.post(
            "/admin/products/new",
            data={
                "name": "Kestrel K8",
                "price": "199.00",
                "category": headphones.id,
                "generate_image": "y",
                "image_count": "1",
            },
        )
    finally:
        event.remove(db.engine, "commit", listener)
    assert response.status_code == 302
    assert len(commits) == 1
    product = product_named("Kestrel K8")
    request = db.session.scalar(select(ImageRequest).where(ImageRequest.product_id == product.id))
    assert request is not None and request.job is not None
    kinds = set(db.session.scalars(select(Job.kind)))
    assert {"images.generate", "embeddings.refresh"} <= kinds
    # one message per job, sent after the commit
    assert jobs_runtime(shop).huey.pending_count() == len(kinds)


def test_the_cookbooks_create_gpt_form_saves_at_once_and_draws_later(
    admin_client, fake_ai, headphones
):
    fake_ai.reply_image_b64(png())
    response = admin_client.post(
        "/product-create-gpt", data={"name": "Buds", "price": "59", "category": headphones.id}
    )
    assert response.status_code == 302
    product = product_named("Buds")
    assert product.image is None and image_status(product.id) == "queued"
    run_latest()
    db.session.expire_all()
    assert product.image is not None
    assert admin_client.get("/product-create-gpt").status_code == 200


def test_candidates_wait_for_the_admins_pick(admin_client, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    fake_ai.reply_image_b64(png((1, 2, 3)))
    request_images(product, n=1)
    run_latest()
    db.session.expire_all()
    first = product.image
    assert first is not None  # the product had none: the first is shown at once

    fake_ai.reply_image_b64(png((200, 0, 0)), n=3)
    response = admin_client.post(
        f"/admin/products/{product.id}/images", data={"prompt": "a red pair", "count": "3"}
    )
    assert response.status_code == 302
    assert run_latest().status == "succeeded"
    assert fake_ai.requests_to(GENERATIONS)[-1].body["prompt"] == "a red pair"
    assert fake_ai.requests_to(GENERATIONS)[-1].body["n"] == 3
    db.session.expire_all()
    candidates = [i for i in product.images if i.prompt == "a red pair"]
    assert len(candidates) == 1  # three identical images are one content-hash file
    assert product.image is first  # nothing replaced the shown image by itself
    page = admin_client.get(f"/admin/products/{product.id}/images").get_data(as_text=True)
    assert "a red pair" in page

    picked = admin_client.post(f"/admin/products/{product.id}/images/{candidates[0].id}/choose")
    assert picked.status_code == 302
    db.session.expire_all()
    assert product.image is not None and product.image.id == candidates[0].id


def test_n_distinct_candidates(shop, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    for color in [(1, 1, 1), (2, 2, 2)]:
        fake_ai.reply_image_b64(png(color))
    # The fake answers one request with n copies; two requests give two distinct images.
    request_images(product, n=1)
    run_latest()
    request_images(product, n=1)
    run_latest()
    db.session.expire_all()
    assert len(product.images) == 2 and sum(i.chosen for i in product.images) == 1


def test_url_replies_are_downloaded_under_the_clients_rules(shop, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    fake_ai.reply_image_url(png())
    request_images(product)
    assert run_latest().status == "succeeded"
    db.session.expire_all()
    assert product.image is not None


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"<html>not an image</html>", "rejected"),
        (bomb_png(), "too large"),
        (png(size=(13_000, 8)), "too large"),
    ],
)
def test_junk_fails_the_attempt_with_a_reason_and_the_product_stays_intact(
    shop, fake_ai, headphones, clock, reply, reason
):
    product = make_product("Kestrel K7", "199.00", headphones)
    request_images(product)
    job = latest_job()
    for _ in range(job.max_attempts):
        fake_ai.reply_image_b64(reply)
        execute_job(job.id)
        clock.advance(7200)
    job = fresh(job.id)
    assert job.status == "failed" and job.attempts == job.max_attempts
    assert reason in (job.last_error or "")
    db.session.expire_all()
    assert product.images == [] and image_status(product.id) == "failed"
    assert stored_files(shop) == []


def test_an_oversized_inline_image_is_refused_before_decoding(app_config, fake_ai):
    config = {**app_config, "SHOPAI_AI": image_settings(fake_ai, SHOPAI_IMAGE_DOWNLOAD_MAX_MB="1")}
    for _ in running(config):
        product = make_product("Kestrel K7", "199.00", make_category("Headphones"))
        fake_ai.reply_image_b64(b"\x89PNG" + b"\x00" * (2 * 1024 * 1024))
        request_images(product)
        job = run_latest()
        assert "over 1 MB" in (job.last_error or "")


def test_backend_down_is_retried_then_failed(shop, fake_ai, headphones, clock):
    product = make_product("Kestrel K7", "199.00", headphones)
    request_images(product)
    job = latest_job()
    statuses = []
    for _ in range(job.max_attempts):
        fake_ai.reply_error(500, kind="images")
        execute_job(job.id)
        statuses.append(fresh(job.id).status)
        clock.advance(7200)
    assert statuses == ["queued"] * (job.max_attempts - 1) + ["failed"]
    assert "image backend failed" in (fresh(job.id).last_error or "")
    assert len(fake_ai.requests_to(GENERATIONS)) == job.max_attempts
    db.session.expire_all()
    assert db.session.get(Product, product.id) is not None and product.images == []


def test_a_re_run_of_a_finished_request_adds_nothing(shop, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    fake_ai.reply_image_b64(png())
    request = request_images(product)
    run_latest()
    from shopai.images.generation import generate
    from shopai.jobs import JobContext  # noqa: F401

    class Context:
        job_id = 0

        def progress(self, *args, **kwargs) -> None:
            pass

    generate(Context(), {"request_id": request.id})  # type: ignore[arg-type]
    assert len(fake_ai.requests_to(GENERATIONS)) == 1
    db.session.expire_all()
    assert len(product.images) == 1 and len(stored_files(shop)) == 2  # image + thumbnail


def test_every_image_lands_in_the_usage_ledger(shop, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    fake_ai.reply_image_b64(png(), n=2)
    request_images(product, n=2)
    run_latest()
    assert flush_usage()
    images = db.session.scalar(
        select(func.sum(UsageRecord.images)).where(UsageRecord.feature == "images")
    )
    assert images == 2


def test_the_daily_image_budget_refuses_with_a_clear_message(app_config, fake_ai):
    config = {**app_config, "SHOPAI_AI": image_settings(fake_ai), "SHOPAI_IMAGES_DAILY_LIMIT": 1}
    for _ in running(config):
        product = make_product("Kestrel K7", "199.00", make_category("Headphones"))
        with pytest.raises(ImageRequestRefused, match="budget"):
            request_images(product, n=2)
        assert db.session.scalar(select(func.count(ImageRequest.id))) == 0


def test_a_category_template_makes_the_prompt(shop, fake_ai, headphones):
    set_template(headphones, "Studio photo of {name} ({category}), white background")
    product = make_product("Kestrel K7", "199.00", headphones)
    request = request_images(product)
    assert request.prompt == "Studio photo of Kestrel K7 (Headphones), white background"


@pytest.mark.parametrize(
    ("template", "message"),
    [("Photo of {price}", "Unknown placeholder {price}"), ("Photo of {name", "stray brace")],
)
def test_bad_templates_are_refused(admin_client, headphones, template, message):
    response = admin_client.post(
        f"/admin/images/prompts/{headphones.id}", data={"template": template}, follow_redirects=True
    )
    assert message in response.get_data(as_text=True)


def test_generation_pages_are_for_admins_only(client, shop, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    for path in (
        f"/admin/products/{product.id}/images",
        "/admin/images/prompts",
        "/product-create-gpt",
    ):
        assert client.get(path).status_code in (302, 401, 403)
    assert db.session.scalar(select(func.count(ProductImage.id))) == 0


@pytest.mark.parametrize(
    "template", ["Photo of {name:d}", "{name!a}", "x {name:{description.__class__}}", "{name.x}"]
)
def test_templates_are_plain_text_substitution(admin_client, headphones, template):
    response = admin_client.post(
        f"/admin/images/prompts/{headphones.id}", data={"template": template}
    )
    assert response.status_code == 302
    product = make_product("Kestrel K7", "199.00", headphones)
    assert request_images(product).prompt == DEFAULT_TEMPLATE.format(name="Kestrel K7")


def test_requests_reserve_the_daily_budget_before_anything_is_drawn(app_config, fake_ai):
    config = {**app_config, "SHOPAI_AI": image_settings(fake_ai), "SHOPAI_IMAGES_DAILY_LIMIT": 3}
    for _ in running(config):
        product = make_product("Kestrel K7", "199.00", make_category("Headphones"))
        request_images(product, n=2)
        with pytest.raises(ImageRequestRefused, match="budget"):
            request_images(product, n=2)  # nothing drawn yet, but 2 of 3 are reserved
        request_images(product, n=1)


def test_picking_an_image_renews_cached_pages(admin_client, fake_ai, headphones):
    product = make_product("Kestrel K7", "199.00", headphones)
    fake_ai.reply_image_b64(png((9, 9, 9)))
    request_images(product, n=1, choose_first=False)
    run_latest()
    db.session.expire_all()
    before = product.updated_at
    admin_client.post(f"/admin/products/{product.id}/images/{product.images[0].id}/choose")
    db.session.expire_all()
    assert product.updated_at > before and product.image is not None


@pytest.mark.without_redis(
    "without Redis the CLI draws itself; with it, workers do (test_multiprocess.py)"
)
def test_the_cli_draws_missing_images_with_a_progress_bar(shop, fake_ai, headphones):
    for name in ("One", "Two"):
        make_product(name, "10.00", headphones)
        fake_ai.reply_image_b64(png((len(name), 0, 0)))
    result = shop.test_cli_runner().invoke(args=["images", "generate", "--missing"])
    assert result.exit_code == 0, result.output
    assert (
        "2 image request(s) queued" in result.output and "Done: 2 drawn, 0 failed" in result.output
    )
    db.session.expire_all()
    assert all(p.image is not None for p in db.session.scalars(select(Product)))
