"""Web accounts: names, roles and argon2 password hashes in a private SQLite file in the data root."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import FILE_MODE, ensure_dir

ROLES = ("clerk", "release", "admin")
MIN_PASSWORD_CHARS = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
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
)
"""


class UserError(MedarchiveError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enabled: bool
    created: str
    updated: str

    def can(self, *roles: str) -> bool:
        return self.enabled and self.role in roles


def users_path(config: Config) -> Path:
    return config.root / "web" / "users.sqlite"


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise UserError(f"{name!r} cannot be a user name: use letters, digits, '.', '_' or '-' (at most 64)")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def _user(row: sqlite3.Row) -> User:
    return User(row["name"], row["role"], bool(row["enabled"]), row["created"], row["updated"])


def _is_last_admin(db: sqlite3.Connection, row: sqlite3.Row) -> bool:
    if row["role"] != "admin" or not row["enabled"]:
        return False
    others = db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND enabled = 1 AND name != ?", (row["name"],))
    return others.fetchone()[0] == 0


class UserStore:
    """Every call opens its own connection, so the store is safe across the server's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_config(cls, config: Config) -> UserStore:
        return cls(users_path(config))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        ensure_dir(self.path.parent)
        # Created 0600 before SQLite opens it; SQLite gives its journal the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE))
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            db.execute(_SCHEMA)
            with db:
                yield db
        finally:
            db.close()

    def get(self, name: str) -> User | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def all(self) -> list[User]:
        with self._db() as db:
            return [_user(row) for row in db.execute("SELECT * FROM users ORDER BY name")]

    def add(self, name: str, role: str, password: str) -> User:
        _check_name(name)
        _check_role(role)
        check_password(password)
        now = now_utc()
        try:
            with self._db() as db:
                db.execute("INSERT INTO users (name, role, password_hash, enabled, created, updated) VALUES (?, ?, ?, 1, ?, ?)",
                           (name, role, _HASHER.hash(password), now, now))
        except sqlite3.IntegrityError:
            raise UserError(f"user {name} already exists; use `medarchive user passwd` to change the password") from None
        return self._existing(name)

    def set_password(self, name: str, password: str) -> User:
        check_password(password)
        return self._update(name, "password_hash = ?", _HASHER.hash(password))

    def set_enabled(self, name: str, enabled: bool) -> User:
        return self._update(name, "enabled = ?", int(enabled), keep_an_admin=not enabled)

    def set_role(self, name: str, role: str) -> User:
        _check_role(role)
        return self._update(name, "role = ?", role, keep_an_admin=role != "admin")

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the name and password match an enabled account, else None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        try:
            _HASHER.verify(row["password_hash"] if row else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row["enabled"]:
            return None
        if _HASHER.check_needs_rehash(row["password_hash"]):
            self._update(name, "password_hash = ?", _HASHER.hash(password))
        return _user(row)

    def _update(self, name: str, assignment: str, value: object, *, keep_an_admin: bool = False) -> User:
        """Change one account; ``keep_an_admin`` refuses the change when it would leave no enabled admin."""
        with self._db() as db:
            # IMMEDIATE: no other writer between the check and the update, so two
            # admins demoting each other at once cannot both succeed.
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UserError(f"no user {name!r}; add one with `medarchive user add`")
            if keep_an_admin and _is_last_admin(db, row):
                raise UserError(f"{name} is the last enabled admin; make another user admin first, "
                                "or nobody could manage the accounts")
            db.execute(f"UPDATE users SET {assignment}, updated = ? WHERE name = ?", (value, now_utc(), name))
        return self._existing(name)

    def _existing(self, name: str) -> User:
        user = self.get(name)
        assert user is not None  # just written
        return user
