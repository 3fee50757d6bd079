"""The durable outbox: every message for the EHR, from queued to delivered or dead.

One SQLite file in the data root (0600, WAL), or the ``outbox`` schema of the shared
database (``pipeline.stores``), where several senders claim messages with
``FOR UPDATE SKIP LOCKED`` so each is sent by one of them. A row is one message to one destination
about one version of one document; (destination, doc_id, action, version) is unique,
so queueing the same filing twice adds nothing. A message is ``pending`` until the
receiver accepts it (``sent``) or refuses it for good (``dead``, with its answer).
Delivery is in order per destination and patient: a message waits while an older
pending one for the same MRN or the same document is still undelivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.stores import (
    Database,
    DatabaseUnavailable,
    Migration,
    Row,
    Schema,
    StoreError,
    Transaction,
    open_store,
)

STATES = ("pending", "sent", "dead")
ACTIONS = ("create", "cancel")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('create', 'cancel')),
    version     INTEGER NOT NULL,
    mrn         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    next_at     REAL NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    receiver_id TEXT,
    UNIQUE (destination, doc_id, action, version)
);
CREATE INDEX IF NOT EXISTS lane_by_mrn ON messages (destination, state, mrn, id);
CREATE INDEX IF NOT EXISTS lane_by_doc ON messages (destination, state, doc_id, id);
CREATE INDEX IF NOT EXISTS by_doc ON messages (doc_id, destination, action, version);
"""
SCHEMA = Schema("outbox", (Migration(1, _SCHEMA),))

# Ready = pending, due, and no older pending message in the same lane (patient or document).
# Two NOT EXISTS rather than one with OR, so each is one look-up in its index.
_READY = """
SELECT * FROM messages AS m
 WHERE m.destination = ? AND m.state = 'pending' AND m.next_at <= ?
   AND NOT EXISTS (
       SELECT 1 FROM messages AS p
        WHERE p.destination = m.destination AND p.state = 'pending' AND p.mrn = m.mrn AND p.id < m.id)
   AND NOT EXISTS (
       SELECT 1 FROM messages AS p
        WHERE p.destination = m.destination AND p.state = 'pending' AND p.doc_id = m.doc_id AND p.id < m.id)
 ORDER BY m.id LIMIT ?
"""
# Several senders on the shared database: each takes the ready rows no other holds.
_CLAIM = {"sqlite": _READY, "postgres": _READY.rstrip() + " FOR UPDATE OF m SKIP LOCKED\n"}


class OutboxError(MedarchiveError):
    """The outbox cannot be read or changed as asked."""


@dataclass(frozen=True)
class Message:
    """One row of the outbox. ``payload`` is what the sender needs, frozen at queueing time."""

    id: int
    destination: str
    doc_id: str
    action: str
    version: int
    mrn: str
    payload: dict
    state: str
    attempts: int
    last_error: str | None
    next_at: float
    created_at: str
    sent_at: str | None
    receiver_id: str | None

    @classmethod
    def from_row(cls, row: Row) -> Message:
        return cls(**{**dict(row), "payload": json.loads(row["payload"])})

    def status_row(self) -> dict:
        """What `ehr status` shows: no patient data beyond the MRN."""
        return {
            "id": self.id,
            "destination": self.destination,
            "doc_id": self.doc_id,
            "action": self.action,
            "version": self.version,
            "mrn": self.mrn,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
        }


@dataclass(frozen=True)
class NewMessage:
    destination: str
    doc_id: str
    action: str
    version: int
    mrn: str
    payload: dict = field(default_factory=dict)


def outbox_path(config: Config) -> Path:
    return config.root / "outbox.sqlite"


def backoff_seconds(attempts: int, first: float, most: float) -> float:
    """Wait before the next attempt after ``attempts`` failures: first, 2x, 4x ... up to most."""
    return min(most, first * (2 ** max(0, attempts - 1)))


class Outbox:
    """The outbox's database, usable from the threads of one process.

    ``durable`` commits survive a power cut (fsync per commit): what queueing needs.
    The sender's own marks (attempts, sent) may be lost to a power cut and only cause
    a resend the receiver recognises, so its SQLite connection skips the fsync.
    """

    def __init__(self, db: Database, path: Path | str) -> None:
        self._db = db
        self.path = path

    @classmethod
    def for_config(cls, config: Config, *, durable: bool = True) -> Outbox:
        where = outbox_path(config) if config.database.url is None else "the shared database (outbox)"
        try:
            return cls(open_store(config, SCHEMA, durable=durable), where)
        except DatabaseUnavailable:
            raise  # waited out by the daemon, a 503 on the web: keep its kind
        except StoreError as exc:
            raise OutboxError(f"cannot open the EHR outbox: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[Transaction]:
        """One atomic, durable step."""
        return self._db.transaction()

    def _rows(self, sql: str, params: tuple | list = ()) -> list[Row]:
        return self._db.query(sql, tuple(params))

    # -- queueing -------------------------------------------------------------------------

    def latest_create(self, destination: str, doc_id: str, db: Transaction | None = None) -> Message | None:
        """The newest create for the document; inside ``db`` when given (it sees that transaction's writes)."""
        read = db.execute if db is not None else self._rows
        rows = read(
            "SELECT * FROM messages WHERE destination = ? AND doc_id = ? AND action = 'create' ORDER BY version DESC LIMIT 1",
            (destination, doc_id),
        )
        return Message.from_row(rows[0]) if rows else None

    def add(self, db: Transaction, messages: Iterable[NewMessage]) -> int:
        """Insert inside ``transaction()``; a message already there is left as it is. Returns how many were new."""
        now = now_utc()
        added = 0
        for m in messages:
            db.execute(
                "INSERT INTO messages (destination, doc_id, action, version, mrn, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (m.destination, m.doc_id, m.action, m.version, m.mrn, json.dumps(m.payload, sort_keys=True), now),
            )
            added += db.rowcount()
        return added

    def mark_superseded(self, db: Transaction, message_id: int, version: int) -> None:
        db.execute(
            "UPDATE messages SET last_error = ? WHERE id = ? AND state = 'dead'",
            (f"superseded by version {version} (the document was moved or retyped)", message_id),
        )

    # -- delivery -------------------------------------------------------------------------

    def ready(self, destination: str, limit: int = 50, now: float | None = None) -> list[Message]:
        rows = self._rows(_READY, (destination, time.time() if now is None else now, limit))
        return [Message.from_row(r) for r in rows]

    def claim(
        self,
        destination: str,
        limit: int,
        wait_if_lost: Callable[[int], float],
        now: float | None = None,
        lease_seconds: float = 0,
    ) -> list[Message]:
        """Take the ready messages to send now and count their attempt, in one step: each is due
        again only after ``wait_if_lost(attempts)`` seconds, and never before ``lease_seconds``
        (as long as sending them may take), so no other sender takes one meanwhile; a crash
        mid-send retries them then."""
        due = time.time() if now is None else now
        with self.transaction() as db:
            rows = db.execute(_CLAIM[self._db.dialect], (destination, due, limit))
            claimed = [Message.from_row(r) for r in rows]
            return self._count_attempts(db, claimed, lambda n: max(wait_if_lost(n), lease_seconds))

    def pending_count(self, destination: str) -> int:
        return self._rows(
            "SELECT COUNT(*) AS n FROM messages WHERE destination = ? AND state = 'pending'", (destination,)
        )[0]["n"]

    def begin_attempts(self, messages: list[Message], wait_if_lost: Callable[[int], float]) -> list[Message]:
        """Count the attempts before sending, so a crash mid-send retries each message after
        ``wait_if_lost(attempts)`` seconds. Returns the messages as now counted."""
        with self.transaction() as db:
            return self._count_attempts(db, messages, wait_if_lost)

    @staticmethod
    def _count_attempts(
        db: Transaction, messages: list[Message], wait_if_lost: Callable[[int], float]
    ) -> list[Message]:
        now = time.time()
        for m in messages:
            db.execute(
                "UPDATE messages SET attempts = ?, next_at = ? WHERE id = ?",
                (m.attempts + 1, now + wait_if_lost(m.attempts + 1), m.id),
            )
        return [replace(m, attempts=m.attempts + 1) for m in messages]

    def delivered(self, message_id: int, receiver_id: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET state = 'sent', sent_at = ?, last_error = NULL, receiver_id = ? WHERE id = ?",
                (now_utc(), receiver_id, message_id),
            )

    def failed(self, message_id: int, error: str, *, retry_at: float | None) -> None:
        """Record an answer that was not an acceptance: retry at ``retry_at``, or dead when None."""
        with self.transaction() as db:
            if retry_at is None:
                db.execute("UPDATE messages SET state = 'dead', last_error = ? WHERE id = ?", (error, message_id))
            else:
                db.execute(
                    "UPDATE messages SET last_error = ?, next_at = ? WHERE id = ?", (error, retry_at, message_id)
                )

    # -- operators ------------------------------------------------------------------------

    def get(self, message_id: int) -> Message:
        rows = self._rows("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise OutboxError(f"no message {message_id} in the EHR outbox; `medarchive ehr status` lists them")
        return Message.from_row(rows[0])

    def retry(self, message_ids: Iterable[int] | None = None) -> list[Message]:
        """Put dead messages back in the queue, due now (all of them when ``message_ids`` is None).

        A dead create that a later version superseded stays dead: sending it now would
        file the document under the patient or type it was corrected away from.
        """
        with self.transaction() as db:
            if message_ids is None:
                ids = [r["id"] for r in db.execute("SELECT id FROM messages WHERE state = 'dead' ORDER BY id")]
            else:
                ids = list(message_ids)
            revived = []
            for message_id in ids:
                message = self._check_retryable(db, message_id)
                if message is None:
                    continue
                db.execute(
                    "UPDATE messages SET state = 'pending', attempts = 0, next_at = 0 WHERE id = ?", (message_id,)
                )
                revived.append(message)
        return revived

    def _check_retryable(self, db: Transaction, message_id: int) -> Message | None:
        rows = db.execute("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise OutboxError(f"no message {message_id} in the EHR outbox; `medarchive ehr status` lists them")
        message = Message.from_row(rows[0])
        if message.state != "dead":
            raise OutboxError(f"message {message_id} is {message.state}, not dead; only dead messages can be retried")
        newer = db.execute(
            "SELECT 1 FROM messages WHERE destination = ? AND doc_id = ? AND action = 'create' AND version > ?",
            (message.destination, message.doc_id, message.version),
        )
        if message.action == "create" and newer:
            return None
        return message

    def messages(self, *, state: str | None = None, limit: int | None = None) -> list[Message]:
        sql, args = "SELECT * FROM messages", list[object]()
        if state is not None:
            sql, args = sql + " WHERE state = ?", [state]
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, limit]
        return [Message.from_row(r) for r in self._rows(sql, args)]

    def counts(self) -> dict[str, dict[str, int]]:
        """destination -> state -> number of messages."""
        result: dict[str, dict[str, int]] = {}
        for row in self._rows("SELECT destination, state, COUNT(*) AS n FROM messages GROUP BY destination, state"):
            result.setdefault(row["destination"], dict.fromkeys(STATES, 0))[row["state"]] = row["n"]
        return result


def outbox_counts(config: Config) -> dict[str, dict[str, int]]:
    """Counts for `medarchive status` and the admin page; empty when nothing was ever queued."""
    if config.database.url is None and not outbox_path(config).exists():
        return {}
    with Outbox.for_config(config) as outbox:
        return outbox.counts()


def document_number(doc_id: str, version: int) -> str:
    """The receiver's identifier of one version: our doc_id, then ``<doc_id>.v2`` ... after corrections
    (a cancelled identifier is never reused, so a conditional create cannot match the old one)."""
    return doc_id if version == 1 else f"{doc_id}.v{version}"


@dataclass(frozen=True)
class Delivery:
    """A receiver's answer to one message: ``sent``, ``retry`` (try again later) or ``dead``."""

    outcome: str
    detail: str
    receiver_id: str | None = None

    @classmethod
    def sent(cls, detail: str, receiver_id: str | None = None) -> Delivery:
        return cls("sent", detail, receiver_id)

    @classmethod
    def retry(cls, detail: str) -> Delivery:
        return cls("retry", detail)

    @classmethod
    def dead(cls, detail: str) -> Delivery:
        return cls("dead", detail)
