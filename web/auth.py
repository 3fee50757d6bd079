"""Login, logout, the session cookie, CSRF tokens and role checks."""

from __future__ import annotations

import functools
import hmac
import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response  # what redirect() gives; flask's Response is one

from web.context import Services, record, services
from web.logins import Busy
from web.sessions import Session
from web.users import DEVICE_DAYS, User, could_be_name

COOKIE = "medarchive_session"
DEVICE_COOKIE = "medarchive_device"
CSRF_FIELD = "csrf_token"
NOT_A_NAME = "(not a user name)"
# Failed logins with names no account has are written as one burst per address (a flood of
# made-up names is one entry with a count, not one per name).
NO_SUCH_USER = "(no such user)"
_WRONG = "Wrong name or password, or the account is disabled."
# A path with a control character (a header injection) or a backslash (which browsers read as '/').
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")
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
        # Checked on every request, so disabling an account or changing its password or
        # role ends its sessions at once (their next request), however it was changed.
        if user is not None and user.enabled and user.version == session.version:
            g.user = user
            return None
        services().sessions.end(session.sid)
        services().audit.record("logout", user=session.user, details={"reason": "account changed or disabled"})
        _start(notice="Your account was changed or disabled; log in again.")
    if request.endpoint in _PUBLIC:
        return None
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _check_csrf(session: Session | None) -> None:
    sent = request.form.get(CSRF_FIELD, "")
    if request.cookies.get(COOKIE) is None and services().config.web.secure_cookies:
        # No session cookie came back: most often the page was reached over plain http,
        # over which a browser (or script) does not return a Secure cookie.
        abort(
            400,
            "Your browser sent no session cookie with the form. This server sends it over HTTPS only: "
            "open the https:// address (the TLS proxy in front of it). For a trusted test on this "
            "machine alone, an admin can set web.secure_cookies: false in the config.",
        )
    if session is None or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        abort(400, "The form was missing its security token or has expired; reload the page and try again.")


def _start(user: User | None = None, notice: str | None = None) -> Session:
    session = services().sessions.new(user.name if user else None, user.version if user else 0)
    session.notice = notice
    g.session, g.new_sid = session, session.sid
    return session


def save_cookie(response: Response) -> Response:
    """After every request: hand a new session id to the browser, or take a dead one away."""
    secure = services().config.web.secure_cookies
    if g.get("session") is not None:
        services().sessions.save(g.session)
    if g.get("new_device"):
        response.set_cookie(
            DEVICE_COOKIE,
            g.new_device,
            max_age=DEVICE_DAYS * 86400,
            httponly=True,
            samesite="Strict",
            secure=secure,
            path="/",
        )
    if g.get("new_sid"):
        response.set_cookie(COOKIE, g.new_sid, httponly=True, samesite="Strict", secure=secure, path="/")
    elif g.get("end_cookie"):
        response.delete_cookie(COOKIE, httponly=True, samesite="Strict", secure=secure, path="/")
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
                # A refused attempt at patient data is an access to account for too.
                mrn = request.values.get("mrn", "").strip()
                record(
                    "forbidden",
                    mrns=[mrn if services().config.extraction.is_mrn(mrn) else None],
                    outcome="refused",
                    details={"path": request.path, "role": g.user.role},
                )
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute or scheme-relative URL (open redirect).
    # Control characters and backslashes are ignored rather than cleaned: browsers drop
    # tabs and newlines and read a backslash as '/', so "/<tab>/evil.example" leaves the site.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not _UNSAFE_IN_PATH.search(target)
        and not urlsplit(target).netloc
    ):
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
    address = request.remote_addr or "-"
    svc = services()
    if not could_be_name(name):
        # No account has such a name: refused before any password is hashed, and logged as one kind.
        _failed(NOT_A_NAME, address, "refused")
        return _login_again(_WRONG, 401)
    account = svc.users.get(name)
    device = _remembered_device(name)
    where = device or address
    logged_as = name if account else NO_SUCH_USER
    if not svc.limiter.begin(name, where, account.unlocks if account else 0, device=device is not None):
        _failed(logged_as, address, "locked out")
        minutes = svc.config.web.lockout_minutes
        return _login_again(f"Too many failed logins; try again in {minutes:g} minutes.", 429)
    try:
        user = _check_password(svc, name, address, device is not None, exists=account is not None)
    except Busy:
        svc.limiter.cancel(name, where)
        return _login_again("The server is busy; try again in a moment.", 503)
    svc.limiter.end(name, where, succeeded=user is not None)
    if user is None:
        _failed(logged_as, address, "refused")
        return _login_again(_WRONG, 401)
    if where == address:
        g.new_device = svc.users.remember_device(user.name)
    # A fresh session id at login, so an id planted before it is worth nothing after.
    svc.sessions.end(g.session.sid)
    _start(user)
    g.user = user
    record("login", details={"address": address})
    _write_failures(svc.failures.due())
    return redirect(_safe_next(request.form.get("next")))


def _check_password(svc: Services, name: str, address: str, known_device: bool, exists: bool) -> User | None:
    """The account when the password is right. A name no account has is answered like a
    wrong password, after as long a wait, without a password check (see web.logins)."""
    delay = None if exists else svc.pacer.delay()
    if delay is not None:
        svc.gate.turn(address, known_device)
        time.sleep(delay)
        return None
    with svc.gate.slot(address, known_device):
        started = time.monotonic()
        user = svc.users.authenticate(name, request.form.get("password", ""))
        svc.pacer.observe(time.monotonic() - started)
    return user


def _remembered_device(name: str) -> str | None:
    """Where the limiter counts this login: the browser, when ``name`` logged in from it before
    (so failures by someone else at the same address cannot lock them out of it)."""
    token = request.cookies.get(DEVICE_COOKIE, "")
    if token and services().users.device_owner(token) == name:
        return f"device {token}"
    return None


def _failed(name: str, address: str, outcome: str) -> None:
    _write_failures(services().failures.note(name, address, outcome))


def _write_failures(entries: list[tuple[str, str, str, int]]) -> None:
    for name, address, outcome, repeats in entries:
        # ``repeated``: how many more failed like this, unwritten, since the entry before.
        details = {"address": address, **({"repeated": repeats} if repeats else {})}
        services().audit.record("login.failed", user=name, outcome=outcome, details=details)


def _login_again(error: str, status: int) -> tuple[str, int]:
    return render_template("login.html", next=request.form.get("next", ""), error=error), status


@bp.post("/logout")
def logout() -> Response:
    record("logout")
    services().sessions.end(g.session.sid)
    g.end_cookie = True
    return redirect(url_for("auth.login"))
