"""/admin/usage: model calls, tokens and estimated cost per feature per day.

A GET page with no script: the metric tabs and the feature filter are links, so
they work from the keyboard and keep their state in the URL (bookmarks, Back)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from ..auth.decorators import admin_required
from .chart import METRICS, feature_colour, feature_label, format_value, stacked_bars
from .report import DEFAULT_DAYS, usage_by_feature_and_day

bp = Blueprint("usage", __name__)

METRIC_LABELS = {"calls": "Model calls", "tokens": "Tokens", "cost": "Estimated cost (USD)"}


@bp.get("/admin/usage")
@admin_required
def usage_page() -> str:
    metric = request.args.get("metric", "calls")
    if metric not in METRICS:
        metric = "calls"
    report = usage_by_feature_and_day(DEFAULT_DAYS, current_app.config["SHOPAI_AI"].prices)
    wanted = request.args.get("feature", "")
    selected = [wanted] if wanted in report.features else list(report.features)
    return render_template(
        "admin/usage.html",
        report=report,
        chart=stacked_bars(report, metric, selected),
        metric=metric,
        metrics=METRICS,
        metric_labels=METRIC_LABELS,
        feature=wanted if wanted in report.features else "",
        selected=selected,
        total=report.total(selected),
        days=DEFAULT_DAYS,
        feature_label=feature_label,
        feature_colour=lambda name: feature_colour(name, report.features),
        format_value=format_value,
    )
