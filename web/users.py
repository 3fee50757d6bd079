"""Web accounts: names, roles and argon2 password hashes in a private SQLite file in the data root
(or the ``users`` schema of the shared database, so every site's `serve` knows the same accounts)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.stores import Database, Migration, Row, Schema, Transaction, open_store

ROLES = ("clerk", "release", "admin")
MIN_PASSWORD_CHARS = 10
MAX_NAME_CHARS = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A remembered device: a login from it is not locked out by failures from elsewhere.
DEVICE_DAYS = 30
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong password.
    Made on first use: a hash costs half a second, which every CLI command would pay."""
    return _HASHER.hash("not a password of anyone")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
-- Counters the running server reads on every request: a change of ``version`` ends the
-- account's sessions, a change of ``unlocks`` its lockouts (tables of their own, so a
-- users table written by an earlier version needs no migration).
CREATE TABLE IF NOT EXISTS account_marks (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    unlocks INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS devices (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
SCHEMA = Schema("users", (Migration(1, _SCHEMA),), file="web/users.sqlite")
_SELECT = (
    "SELECT users.*, COALESCE(marks.version, 0) AS version, COALESCE(marks.unlocks, 0) AS unlocks "
    "FROM users LEFT JOIN account_marks AS marks USING (name)"
)


class UserError(MedarchiveError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enabled: bool
    created: str
    updated: str
    version: int = 0  # changes with the password, role or enabled: sessions of another version are over
    unlocks: int = 0

    def can(self, *roles: str) -> bool:
        return self.enabled and self.role in roles


def _device_cutoff() -> str:
    return (datetime.now(UTC) - timedelta(days=DEVICE_DAYS)).isoformat(timespec="seconds")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def users_path(config: Config) -> Path:
    return config.root / "web" / "users.sqlite"


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")


def could_be_name(name: str) -> bool:
    """Whether an account could have this name (checked before any password is verified)."""
    return len(name) <= MAX_NAME_CHARS and _NAME.fullmatch(name) is not None


def _check_name(name: str) -> None:
    if not could_be_name(name):
        raise UserError(f"{name!r} cannot be a user name: use letters, digits, '.', '_' or '-' (at most 64)")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def _user(row: Row) -> User:
    return User(
        row["name"], row["role"], bool(row["enabled"]), row["created"], row["updated"], row["version"], row["unlocks"]
    )


def _is_last_admin(db: Transaction, row: Row) -> bool:
    if row["role"] != "admin" or not row["enabled"]:
        return False
    others = db.execute(
        "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND enabled = 1 AND name != ?", (row["name"],)
    )
    return others[0]["n"] == 0


class _OpenedPerCall:
    """The SQLite file opened for each call, as the store always did: a connection held open
    would lose its POSIX locks whenever anything else in the process opens and closes the file."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def query(self, sql: str, params: tuple = ()) -> list[Row]:
        db = open_store(self._config, SCHEMA)
        try:
            return db.query(sql, params)
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        db = open_store(self._config, SCHEMA)
        try:
            with db.transaction() as tx:
                yield tx
        finally:
            db.close()


class UserStore:
    """The accounts' database, safe across the server's threads."""

    def __init__(self, db: Database | _OpenedPerCall) -> None:
        self._db = db

    @classmethod
    def for_config(cls, config: Config) -> UserStore:
        return cls(open_store(config, SCHEMA) if config.database.url else _OpenedPerCall(config))

    def get(self, name: str) -> User | None:
        rows = self._db.query(f"{_SELECT} WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def all(self) -> list[User]:
        return [_user(row) for row in self._db.query(f"{_SELECT} ORDER BY name")]

    def add(self, name: str, role: str, password: str) -> User:
        _check_name(name)
        _check_role(role)
        check_password(password)
        now = now_utc()
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO users (name, role, password_hash, enabled, created, updated) VALUES (?, ?, ?, 1, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, role, _HASHER.hash(password), now, now),
            )
            if not db.rowcount():
                raise UserError(f"user {name} already exists; use `medarchive user passwd` to change the password")
        return self._existing(name)

    # A password, role or enabled change ends the account's sessions: each bumps its version.

    def set_password(self, name: str, password: str) -> User:
        check_password(password)
        return self._update(name, "password_hash = ?", _HASHER.hash(password), new_version=True)

    def set_enabled(self, name: str, enabled: bool) -> User:
        return self._update(name, "enabled = ?", int(enabled), keep_an_admin=not enabled, new_version=True)

    def set_role(self, name: str, role: str) -> User:
        _check_role(role)
        return self._update(name, "role = ?", role, keep_an_admin=role != "admin", new_version=True)

    def unlock(self, name: str) -> User:
        """End the account's login lockouts (the running server sees the new count on the next try)."""
        with self._db.transaction() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)):
                raise UserError(f"no user {name!r}; `medarchive user list` shows the accounts")
            self._bump(db, name, "unlocks")
        return self._existing(name)

    def remember_device(self, name: str) -> str:
        """A new token for the browser ``name`` just logged in from (only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        cutoff = _device_cutoff()
        with self._db.transaction() as db:
            db.execute("DELETE FROM devices WHERE created < ?", (cutoff,))
            db.execute(
                "INSERT INTO devices (token_hash, name, created) VALUES (?, ?, ?)", (_digest(token), name, now_utc())
            )
        return token

    def device_owner(self, token: str) -> str | None:
        """The user a device token was given to, if it is one and not too old."""
        if not token or len(token) > 64:
            return None
        cutoff = _device_cutoff()
        rows = self._db.query(
            "SELECT name FROM devices WHERE token_hash = ? AND created >= ?", (_digest(token), cutoff)
        )
        return rows[0]["name"] if rows else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the name and password match an enabled account, else None."""
        rows = self._db.query(f"{_SELECT} WHERE name = ?", (name,))
        row = rows[0] if rows else None
        try:
            _HASHER.verify(row["password_hash"] if row else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row["enabled"]:
            return None
        if _HASHER.check_needs_rehash(row["password_hash"]):
            self._update(name, "password_hash = ?", _HASHER.hash(password))
        return _user(row)

    def _update(
        self, name: str, assignment: str, value: object, *, keep_an_admin: bool = False, new_version: bool = False
    ) -> User:
        """Change one account; ``keep_an_admin`` refuses the change when it would leave no enabled admin."""
        with self._db.transaction() as db:
            # No other writer between the check and the update (on any server), so two
            # admins demoting each other at once cannot both succeed.
            db.lock("users:accounts")
            rows = db.execute("SELECT * FROM users WHERE name = ?", (name,))
            row = rows[0] if rows else None
            if row is None:
                raise UserError(f"no user {name!r}; add one with `medarchive user add`")
            if keep_an_admin and _is_last_admin(db, row):
                raise UserError(
                    f"{name} is the last enabled admin; make another user admin first, "
                    "or nobody could manage the accounts"
                )
            db.execute(f"UPDATE users SET {assignment}, updated = ? WHERE name = ?", (value, now_utc(), name))
            if new_version:
                self._bump(db, name, "version")
        return self._existing(name)

    @staticmethod
    def _bump(db: Transaction, name: str, counter: str) -> None:
        db.execute(
            f"INSERT INTO account_marks (name, {counter}) VALUES (?, 1) "
            f"ON CONFLICT (name) DO UPDATE SET {counter} = account_marks.{counter} + 1",
            (name,),
        )

    def _existing(self, name: str) -> User:
        user = self.get(name)
        assert user is not None  # just written
        return user
