"""The requests store: one row per request, every status change in its history (through pipeline.stores).

A change is written with the status it expects to find, so two clerks acting on one
request at once cannot both change it: the second is told to look again. A fulfilment,
which releases before it can record that it did, first claims the request, so a second
one (a double click, another clerk) is refused before anything is released.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.core.errors import MedarchiveError
from pipeline.requests.records import Ask, Authorization, Extension, HistoryEvent, Request, Requester
from pipeline.stores import Migration, Row, Schema, SchemaStore, Transaction

SCHEMA = Schema(
    "requests",
    (
        Migration(
            1,
            """
            CREATE TABLE requests (
                id INTEGER PRIMARY KEY,
                mrn TEXT NOT NULL,
                kind TEXT NOT NULL,
                requester TEXT NOT NULL,
                purpose TEXT NOT NULL,
                ask TEXT NOT NULL,
                channel TEXT NOT NULL,
                received TEXT NOT NULL,
                due TEXT NOT NULL,
                rule TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                extension TEXT,
                authorization_ TEXT,
                fee_cents INTEGER,
                fee_note TEXT,
                release_id TEXT,
                released_docs TEXT,
                denial_reason TEXT,
                letter TEXT,
                closed_on TEXT,
                claimed_at TEXT
            );
            CREATE INDEX requests_by_status_due ON requests (status, due);
            CREATE INDEX requests_by_mrn ON requests (mrn);
            CREATE TABLE request_history (
                id INTEGER PRIMARY KEY,
                request_id INTEGER NOT NULL REFERENCES requests (id),
                at TEXT NOT NULL,
                by_user TEXT NOT NULL,
                action TEXT NOT NULL,
                from_status TEXT,
                to_status TEXT NOT NULL,
                note TEXT
            );
            CREATE INDEX request_history_by_request ON request_history (request_id, id);
            """,
        ),
    ),
)

# A fulfilment takes seconds to minutes; a claim this old was left by a process that died.
CLAIM_STALE = timedelta(hours=1)

# Columns a change may set, besides the status (never built from input).
_CHANGEABLE = frozenset(
    {
        "due",
        "extension",
        "authorization_",
        "fee_cents",
        "fee_note",
        "release_id",
        "released_docs",
        "denial_reason",
        "letter",
        "closed_on",
    }
)


class RequestNotFound(MedarchiveError):
    """No request has that id."""


class RequestConflict(MedarchiveError):
    """The request changed under us (another clerk acted on it first)."""


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _request(row: Row) -> Request:
    ask = _loads(row["ask"])
    extension = _loads(row["extension"])
    auth = _loads(row["authorization_"])
    return Request(
        id=row["id"],
        mrn=row["mrn"],
        kind=row["kind"],
        requester=Requester(**_loads(row["requester"])),
        purpose=row["purpose"],
        ask=Ask(**{**ask, "doc_types": tuple(ask["doc_types"]), "doc_ids": tuple(ask["doc_ids"])}),
        channel=row["channel"],
        received=row["received"],
        due=row["due"],
        rule=_loads(row["rule"]),
        status=row["status"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        extension=Extension(**extension) if extension else None,
        authorization=Authorization(**{**auth, "covers": tuple(auth["covers"])}) if auth else None,
        fee_cents=row["fee_cents"],
        fee_note=row["fee_note"],
        release_id=row["release_id"],
        released_docs=tuple(_loads(row["released_docs"]) or ()),
        denial_reason=row["denial_reason"],
        letter=row["letter"],
        closed_on=row["closed_on"],
    )


def column_values(**changes: Any) -> dict[str, Any]:
    """Record fields as the store's columns (JSON for the structured ones)."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "extension":
            out["extension"] = _json(asdict(value)) if value else None
        elif key == "authorization":
            out["authorization_"] = _json(asdict(value)) if value else None
        elif key == "released_docs":
            out["released_docs"] = _json(list(value))
        else:
            out[key] = value
    return out


class RequestStore(SchemaStore):
    SCHEMA = SCHEMA

    def add(self, request: Request, *, at: str) -> Request:
        """Store a new request (its id is assigned here) with its first history entry."""
        with self.db.transaction() as tx:
            (row,) = tx.execute(
                "INSERT INTO requests (mrn, kind, requester, purpose, ask, channel, received, due, rule, status,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    request.mrn,
                    request.kind,
                    _json(asdict(request.requester)),
                    request.purpose,
                    _json(asdict(request.ask)),
                    request.channel,
                    request.received,
                    request.due,
                    _json(request.rule),
                    request.status,
                    request.created_at,
                    request.created_by,
                ),
            )
            _history(tx, row["id"], at, request.created_by, "add", None, request.status, None)
        return self.get(row["id"])

    def get(self, request_id: int) -> Request:
        rows = self.db.query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise RequestNotFound(f"there is no request {request_id}; `medarchive requests list` shows them")
        return _request(rows[0])

    def find(self, *, status: str | None = None, mrn: str | None = None, open_only: bool = False) -> list[Request]:
        """Requests by due date, oldest due first."""
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if open_only:
            where.append("status IN ('received', 'in_progress')")
        if mrn:
            where.append("mrn = ?")
            params.append(mrn)
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY due, id"
        return [_request(r) for r in self.db.query(sql, params)]

    def history(self, request_id: int) -> list[HistoryEvent]:
        rows = self.db.query(
            "SELECT at, by_user, action, from_status, to_status, note FROM request_history"
            " WHERE request_id = ? ORDER BY id",
            (request_id,),
        )
        return [
            HistoryEvent(r["at"], r["by_user"], r["action"], r["from_status"], r["to_status"], r["note"]) for r in rows
        ]

    def claim(self, request: Request, *, at: str, stale_before: str | None = None) -> str:
        """Hold the request for one fulfilment; return the claim, which only its own changes pass.
        A claim older than ``stale_before`` (default: an hour ago) was left by a crash."""
        with self.db.transaction() as tx:
            tx.execute(_claim_sql(), (at, request.id, request.status, request.due, stale_before or _stale_before()))
            if tx.rowcount() != 1:
                raise RequestConflict(
                    f"request {request.id} is being fulfilled by someone else or was changed meanwhile; "
                    f"nothing was released (look at it again: `medarchive requests show {request.id}`)"
                )
        return at

    def unclaim(self, request_id: int) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE requests SET claimed_at = NULL WHERE id = ?", (request_id,))

    def change(
        self,
        request: Request,
        *,
        action: str,
        status: str,
        by: str,
        at: str,
        note: str | None = None,
        claim: str | None = None,
        **fields: Any,
    ) -> Request:
        """Set the status (and fields) if the request is still as ``request`` saw it and no fulfilment but
        the one holding ``claim`` runs on it; log it in the history."""
        columns = column_values(**fields)
        if not set(columns) <= _CHANGEABLE:
            raise ValueError(f"not a changeable column: {sorted(set(columns) - _CHANGEABLE)}")
        assignments = ", ".join(f"{name} = ?" for name in ("status", *columns)) + ", claimed_at = NULL"
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE requests SET {assignments} WHERE id = ? AND status = ? AND due = ?"
                " AND (claimed_at IS NULL OR claimed_at = ? OR claimed_at < ?)",
                (status, *columns.values(), request.id, request.status, request.due, claim, _stale_before()),
            )
            if tx.rowcount() != 1:
                raise RequestConflict(
                    f"request {request.id} is being fulfilled or was changed by someone else meanwhile; "
                    f"nothing was changed (look at it again: `medarchive requests show {request.id}`)"
                )
            _history(tx, request.id, at, by, action, request.status, status, note)
        return self.get(request.id)


def _stale_before() -> str:
    return (datetime.now(UTC) - CLAIM_STALE).isoformat(timespec="seconds")


def _claim_sql() -> str:
    return (
        "UPDATE requests SET claimed_at = ? WHERE id = ? AND status = ? AND due = ?"
        " AND (claimed_at IS NULL OR claimed_at < ?)"
    )


def _history(
    tx: Transaction, request_id: int, at: str, by: str, action: str, before: str | None, after: str, note: str | None
) -> None:
    tx.execute(
        "INSERT INTO request_history (request_id, at, by_user, action, from_status, to_status, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (request_id, at, by, action, before, after, note),
    )
