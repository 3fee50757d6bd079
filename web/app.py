"""The Flask application factory: services, blueprints, security headers and error pages."""

from __future__ import annotations

import gc
import secrets
import time

from flask import Flask, Response, g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.stores import DatabaseUnavailable, open_store
from web import auth
from web.context import EXTENSION, Services
from web.logins import FailureLog, LoginLimiter, Pacer, VerifyGate
from web.sessions import Clock, SessionStore
from web.shared_logins import SCHEMA as SESSIONS_SCHEMA
from web.shared_logins import DatabaseLoginLimiter, DatabaseSessionStore
from web.users import UserStore
from web.views import admin as views_admin
from web.views import boxes as views_boxes
from web.views import documents as views_documents
from web.views import prep as views_prep
from web.views import release as views_release
from web.views import requests as views_requests
from web.views import review as views_review
from web.views import search as views_search

# No inline script or style anywhere, and the PDF may only be framed by this site.
_CSP = "default-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'self'"
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}


_CALIBRATING_CHECKS = 3

# Every form here is small (a release naming thousands of documents is some 300 kB):
# a bigger request is refused (413) before it is read, let alone logged.
_LIMITS = {"MAX_CONTENT_LENGTH": 1 << 20, "MAX_FORM_MEMORY_SIZE": 1 << 20, "MAX_FORM_PARTS": 100}


def create_app(config: Config, clock: Clock = time.monotonic) -> Flask:
    """The web app over the config's archive and index; ``clock`` drives idle timeouts and lockouts."""
    app = Flask(__name__)
    # Flask's own signed-cookie session is not used (sessions are server-side);
    # the key only has to exist and stay secret.
    app.secret_key = secrets.token_bytes(32)
    web = config.web
    sessions, limiter = _sessions_and_limiter(config, clock)
    app.extensions[EXTENSION] = Services(
        config=config,
        index=open_index(config),
        audit=AuditLog.for_config(config),
        users=UserStore.for_config(config),
        sessions=sessions,
        limiter=limiter,
        gate=VerifyGate(web.concurrent_logins, web.login_wait_seconds),
        failures=FailureLog(web.lockout_minutes * 60, clock),
        pacer=Pacer(),
    )
    app.config.update(_LIMITS)
    for blueprint in (
        auth.bp,
        views_search.bp,
        views_documents.bp,
        views_review.bp,
        views_release.bp,
        views_admin.bp,
        views_prep.bp,
        views_boxes.bp,
        views_requests.bp,
    ):
        app.register_blueprint(blueprint)
    app.before_request(auth.load_session)
    app.after_request(auth.save_cookie)
    app.after_request(_harden)
    app.context_processor(_template_globals)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(MedarchiveError, _archive_error)
    app.register_error_handler(DatabaseUnavailable, _database_away)
    if web.trusted_proxy:
        # One hop: only the address the proxy put there. Anything further left came from
        # the client and could be forged to dodge the login lockout. Nothing else is taken
        # from the proxy's headers: redirects are relative and cookies are set by config.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=0)  # type: ignore[method-assign]  # Flask's documented way
    return app


def _sessions_and_limiter(
    config: Config, clock: Clock
) -> tuple[SessionStore | DatabaseSessionStore, LoginLimiter | DatabaseLoginLimiter]:
    """In this process's memory, or in the shared database so every server behind the proxy agrees."""
    web = config.web
    if config.database.url is None:
        return (
            SessionStore(web.idle_timeout_minutes * 60, clock),
            LoginLimiter(web.login_attempts, web.lockout_minutes * 60, clock, web.account_login_attempts),
        )
    # The servers share wall-clock time; each one's monotonic clock starts at its own boot.
    shared_clock = time.time if clock is time.monotonic else clock
    db = open_store(config, SESSIONS_SCHEMA)
    return (
        DatabaseSessionStore(db, web.idle_timeout_minutes * 60, shared_clock),
        DatabaseLoginLimiter(
            db, web.login_attempts, web.lockout_minutes * 60, shared_clock, web.account_login_attempts
        ),
    )


def warm_up(app: Flask) -> None:
    """What `serve` does before it listens: read the index's per-segment data
    now rather than in the first clerk's search, then set everything loaded
    so far (modules, templates, those caches), which lives as long as the
    process, aside from garbage collection: a full collection went through it
    all, some 50 ms, every few searches. It also times a few password checks
    for the pacer of made-up names."""
    services = app.extensions[EXTENSION]
    services.index.warm()
    for _ in range(_CALIBRATING_CHECKS):
        # Timed password checks for the pacer, so the first made-up names need none (see web.logins).
        started = time.monotonic()
        services.users.authenticate(auth.NOT_A_NAME, "")
        services.pacer.observe(time.monotonic() - started)
    gc.freeze()


def _harden(response: Response) -> Response:
    response.headers.update(_HEADERS)
    if request.endpoint != "static":
        # Patient data must not linger in a shared workstation's browser cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def _template_globals() -> dict:
    return {"csrf_token": auth.csrf_token(), "user": g.get("user"), "notice": auth.take_notice()}


def _http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", title=f"{exc.code} {exc.name}", message=exc.description), exc.code or 500


def _archive_error(exc: MedarchiveError) -> tuple[str, int]:
    return render_template("error.html", title="The archive could not do that", message=str(exc)), 409


def _database_away(exc: DatabaseUnavailable) -> tuple[str, int, dict[str, str]]:
    page = render_template(
        "error.html",
        title="The archive's database is unavailable",
        message="The shared database cannot be reached just now. Try again in a minute; nothing was lost.",
    )
    return page, 503, {"Retry-After": "30"}
