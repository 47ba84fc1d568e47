"""`shopai ai check`: each feature's backend and model, and one live round trip."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click
from flask.cli import with_appcontext

from .ai.client import AIClient
from .ai.errors import AIError
from .ai.settings import FEATURES, Feature
from .ai_service import ai_client, flush_usage

WHO = "cli:ai-check"
PROBE: list = [{"role": "user", "content": "Reply with one short sentence about headphones."}]


@dataclass(frozen=True)
class CheckResult:
    feature: Feature
    backend: str
    model: str
    ok: bool
    detail: str
    seconds: float


def _probe(client: AIClient, feature: Feature, include_images: bool) -> str:
    if feature == "suggest":
        reply = client.chat("suggest", PROBE, who=WHO, max_tokens=24)
        return f"{reply.usage.completion_tokens} tokens: {reply.text.strip()[:60]!r}"
    if feature == "chat":
        with client.stream("chat", PROBE, who=WHO, max_tokens=24) as stream:
            text = "".join(stream.text_deltas())
        return f"streamed {len(text)} chars: {text.strip()[:60]!r}"
    if feature == "embeddings":
        vectors = client.embed(["wireless noise cancelling headphones"], who=WHO)
        return f"{len(vectors[0])}-dimensional vector"
    if not include_images and client.settings.feature("images").backend != "renderer":
        return "skipped (a paid call; run with --images)"
    images = client.generate_images(
        "A studio photo of wireless headphones", size="1024x1024", title="Check", who=WHO
    )
    return f"{len(images[0].data):,} bytes of image"


def run_checks(client: AIClient, include_images: bool = False) -> list[CheckResult]:
    results = []
    for feature in FEATURES:
        settings = client.settings.feature(feature)
        started = time.perf_counter()
        try:
            detail, ok = _probe(client, feature, include_images), True
        except AIError as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append(
            CheckResult(
                feature, settings.backend, settings.model, ok, detail, time.perf_counter() - started
            )
        )
    return results


@click.group("ai")
def ai_group() -> None:
    """AI backends: configuration and health."""


@ai_group.command("check")
@click.option("--images", "include_images", is_flag=True, help="Also generate a paid image.")
@with_appcontext
def check_command(include_images: bool) -> None:
    """Print each feature's backend and model, and the result of a live round trip."""
    results = run_checks(ai_client(), include_images)
    flush_usage()  # the probes' usage rows, before the process exits
    width = max(len(r.model) for r in results)
    for r in results:
        status = click.style("ok  ", fg="green") if r.ok else click.style("FAIL", fg="red")
        click.echo(
            f"{r.feature:<11} {r.backend:<9} {r.model:<{width}}  "
            f"{status} {r.seconds * 1000:7.0f} ms  {r.detail}"
        )
    if not all(r.ok for r in results):
        raise SystemExit(1)
