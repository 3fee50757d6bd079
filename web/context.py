"""What every request handler shares: the config, index, audit log, accounts and sessions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app, g

from indexers.base import Index
from pipeline.archive.audit import AuditLog
from pipeline.core.config import Config
from web.logins import FailureLog, LoginLimiter, Pacer, VerifyGate
from web.sessions import SessionStore
from web.shared_logins import DatabaseLoginLimiter, DatabaseSessionStore
from web.users import User, UserStore

EXTENSION = "medarchive"


@dataclass(frozen=True)
class Services:
    config: Config
    index: Index
    audit: AuditLog
    users: UserStore
    sessions: SessionStore | DatabaseSessionStore
    limiter: LoginLimiter | DatabaseLoginLimiter
    gate: VerifyGate
    failures: FailureLog
    pacer: Pacer


def services() -> Services:
    return current_app.extensions[EXTENSION]


def current_user() -> User:
    """The logged-in user (every handler but login runs only with one)."""
    return g.user


def record(
    action: str,
    *,
    doc_ids: Iterable[str] = (),
    mrns: Iterable[str | None] = (),
    details: dict | None = None,
    outcome: str = "ok",
    reason: str | None = None,
) -> None:
    """Audit what the logged-in user is about to be shown or has done."""
    services().audit.record(
        action, user=current_user().name, doc_ids=doc_ids, mrns=mrns, details=details, outcome=outcome, reason=reason
    )
