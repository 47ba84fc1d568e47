from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from ..extensions import limiter
from . import bp
from .forms import LoginForm
from .services import authenticate, sign_out_everywhere


def _login_limit() -> str:
    return current_app.config["SHOPAI_LOGIN_RATE_LIMIT"]


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login is a phishing aid.

    Browsers read "//host", "/\\host" and "////host" as another site and drop tabs
    and newlines from URLs, so a path must start with exactly one slash and hold no
    backslash, control character or space before it counts as ours.
    """
    if target and _is_local_path(target):
        return target
    return url_for("admin.index")


def _is_local_path(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response | tuple[str, int]:
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=form.remember.data)
            flash("Signed in.", "success")
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong email or password.")
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    user = current_user._get_current_object() if current_user.is_authenticated else None
    logout_user()
    if user is not None:
        sign_out_everywhere(user)
    session.clear()  # and whatever else this browser kept, such as assistant conversations
    flash("Signed out.", "info")
    return redirect(url_for("catalog.home"))


@bp.get("/csrf-token")
def csrf_token() -> Response:
    """A token for scripts on pages that carry none (anonymous pages are shared by
    every visitor, so they cannot hold one). Starts the visitor's session."""
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response
