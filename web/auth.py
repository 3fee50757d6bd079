"""Login, logout, the session cookie, CSRF tokens and role checks."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from web.context import record, services
from web.sessions import Session

COOKIE = "medarchive_session"
CSRF_FIELD = "csrf_token"
_PUBLIC = {"auth.login", "auth.login_post", "static"}
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

bp = Blueprint("auth", __name__)


def load_session() -> Response | None:
    """Before every request: find the session, end it when idle, check CSRF, require a login."""
    g.session, g.user, g.new_sid = None, None, None
    session, expired = services().sessions.touch(request.cookies.get(COOKIE))
    if expired is not None and expired.user:
        services().audit.record("logout", user=expired.user, details={"reason": "idle timeout"})
        session = _start(notice="You were logged out after a period of inactivity.")
    g.session = session
    if request.method in _UNSAFE_METHODS:
        _check_csrf(session)
    if session and session.user:
        user = services().users.get(session.user)
        # Checked on every request, so disabling an account or changing a role takes effect at once.
        if user is not None and user.enabled:
            g.user = user
            return None
        services().sessions.end(session.sid)
        _start(notice="Your account is no longer enabled.")
    if request.endpoint in _PUBLIC:
        return None
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _check_csrf(session: Session | None) -> None:
    sent = request.form.get(CSRF_FIELD, "")
    if session is None or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        abort(400, "The form was missing its security token or has expired; reload the page and try again.")


def _start(user: str | None = None, notice: str | None = None) -> Session:
    session = services().sessions.new(user)
    session.notice = notice
    g.session, g.new_sid = session, session.sid
    return session


def save_cookie(response: Response) -> Response:
    """After every request: hand a new session id to the browser, or take a dead one away."""
    if g.get("new_sid"):
        response.set_cookie(COOKIE, g.new_sid, httponly=True, samesite="Strict",
                            secure=services().config.web.secure_cookies, path="/")
    elif g.get("end_cookie"):
        response.delete_cookie(COOKIE, httponly=True, samesite="Strict",
                               secure=services().config.web.secure_cookies, path="/")
    return response


def csrf_token() -> str:
    return g.session.csrf if g.get("session") else ""


def take_notice() -> str | None:
    session = g.get("session")
    if session is None or session.notice is None:
        return None
    notice, session.notice = session.notice, None
    return notice


def requires(*roles: str) -> Callable:
    """Only users with one of these roles may call the view (403 otherwise)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not g.user.can(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute or scheme-relative URL (open redirect).
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("search.search")


@bp.get("/login")
def login() -> str | Response:
    if g.user:
        return redirect(_safe_next(request.args.get("next")))
    if g.session is None:
        _start()
    return render_template("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login_post() -> tuple[str, int] | Response:
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "-"
    svc = services()
    who = name or "(no name given)"
    if svc.limiter.locked(name, address):
        svc.audit.record("login.failed", user=who, outcome="locked out", details={"address": address})
        minutes = svc.config.web.lockout_minutes
        return _login_again(f"Too many failed logins; try again in {minutes:g} minutes.", 429)
    user = svc.users.authenticate(name, password)
    if user is None:
        svc.limiter.failed(name, address)
        svc.audit.record("login.failed", user=who, outcome="refused", details={"address": address})
        return _login_again("Wrong name or password, or the account is disabled.", 401)
    svc.limiter.succeeded(name, address)
    # A fresh session id at login, so an id planted before it is worth nothing after.
    svc.sessions.end(g.session.sid)
    _start(user.name)
    g.user = user
    record("login", details={"address": address})
    return redirect(_safe_next(request.form.get("next")))


def _login_again(error: str, status: int) -> tuple[str, int]:
    return render_template("login.html", next=request.form.get("next", ""), error=error), status


@bp.post("/logout")
def logout() -> Response:
    record("logout")
    services().sessions.end(g.session.sid)
    g.end_cookie = True
    return redirect(url_for("auth.login"))
