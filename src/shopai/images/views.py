from __future__ import annotations

from flask import current_app, send_from_directory
from werkzeug.wrappers import Response

from . import bp

ONE_YEAR = 365 * 24 * 3600


@bp.route("/media/<path:filename>")
def media(filename: str) -> Response:
    """Serve a stored image. Names are content hashes, so they can be cached forever."""
    response = send_from_directory(
        current_app.config["SHOPAI_UPLOAD_DIR"], filename, max_age=ONE_YEAR
    )
    response.cache_control.immutable = True
    return response
