"""ShopAI: a Flask shop whose catalog is the truth and whose AI features add language."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily so `shopai.ai` can be used without Flask loaded
    from flask import Flask

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from environment settings, overridden by `config` (tests use this)."""
    from flask import Flask
    from flask.helpers import get_debug_flag

    from .config import ConfigError, load_settings
    from .web import IdConverter

    instance_path = os.environ.get("SHOPAI_INSTANCE_PATH") or Path.cwd() / "instance"
    app = Flask(__name__, instance_path=str(Path(instance_path).resolve()))

    app.url_map.converters["id"] = IdConverter
    app.config.from_mapping(load_settings(app.instance_path))
    if config:
        app.config.from_mapping(config)
    if get_debug_flag() and app.config["SHOPAI_ENV"] != "development":
        # The Werkzeug debugger runs arbitrary code for whoever reaches it.
        raise ConfigError("debug mode (FLASK_DEBUG, --debug) is only allowed in development")
    for folder in (app.instance_path, app.config["SHOPAI_UPLOAD_DIR"]):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create folder {folder}: {exc.strerror}") from None

    from .ai_service import init_ai
    from .cache import init_cache
    from .errors import register_error_handlers
    from .gc_freeze import init_gc_freeze
    from .jobs import init_jobs
    from .page_cache import init_page_cache
    from .request_log import configure_logging
    from .security import register_security_headers
    from .templating import register_template_helpers

    configure_logging(app)
    register_extensions(app)
    init_ai(app)
    init_jobs(app)
    init_gc_freeze(app)
    init_cache(app)
    init_page_cache(app)
    register_blueprints(app)
    register_commands(app)
    register_template_helpers(app)
    register_error_handlers(app)
    register_security_headers(app)
    return app


def register_extensions(app: Flask) -> None:
    from . import models  # noqa: F401 - every table known before Alembic looks
    from .auth.services import load_user
    from .extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_user)

    if app.config["SHOPAI_BEHIND_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    with app.app_context():
        from .db_setup import configure_engine

        configure_engine(db.engine)


def register_blueprints(app: Flask) -> None:
    from . import admin, api, assistant, auth, catalog, health, images, jobs, search, suggest, usage

    for module in (catalog, search, admin, auth, api, images, jobs, suggest, assistant):
        app.register_blueprint(module.bp)
    for module in (health, usage):  # probes; /admin/usage
        app.register_blueprint(module.bp)


def register_commands(app: Flask) -> None:
    from .ai_check import ai_group
    from .cli import admins_command, create_admin_command, images_group, seed_demo_command
    from .jobs.cli import jobs_group, worker_command
    from .search.cli import embeddings_group, search_group
    from .serve import serve_command
    from .suggest.cli import suggest_group

    commands = (
        seed_demo_command,
        create_admin_command,
        admins_command,
        images_group,
        ai_group,
        worker_command,
        jobs_group,
        embeddings_group,
        search_group,
        suggest_group,
        serve_command,
    )
    for command in commands:
        app.cli.add_command(command)
