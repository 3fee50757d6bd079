"""The audit trail: an append-only, hash-chained JSON-lines log of every access to patient records.

Each entry carries the SHA-256 of the entry before it, so editing, inserting or
deleting a line breaks the chain from that line on; a head file remembers the last
entry written, so lines cut off the end are noticed too. Someone able to rewrite
the whole file could recompute the chain: keep a copy of the head hash that
`medarchive audit verify` prints somewhere they cannot write, and compare.

The same chained log (``ChainedLog``) keeps the retention destruction log.

With ``database.url`` set, both chains live in the shared database instead
(``DatabaseChainedLog``): the same entries, sealed the same way, one row each; the
sites append under an advisory lock per chain, so concurrent writers never fork it,
and a heads table plays the head file's part.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import FILE_MODE, atomic_write_json, ensure_dir, read_json
from pipeline.stores import Database, Migration, Row, Schema, Transaction, open_store

GENESIS = "0" * 64
_CHUNK = 1 << 16
# A value longer than this is written cut, with its length and SHA-256 (which still
# tells one value from another): a clerk's 60,000-digit "MRN" wrote 120 kB each time.
MAX_VALUE_CHARS = 256
_KEPT_CHARS = 64
_PAGE = 5000  # entries read at a time from the database

SCHEMA = Schema(
    "audit",
    (
        Migration(
            1,
            """
CREATE TABLE IF NOT EXISTS entries (
    chain TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE TABLE IF NOT EXISTS heads (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
""",
        ),
    ),
)

ACTIONS = frozenset(
    {
        "ingest",
        "search",
        "list",
        "show",
        "export",
        "disclosures",
        "review.assign",
        "reassign",
        "reindex",
        "verify",
        "retention.report",
        "retention.purge",
        "audit",
        "backlog",
        # the web interface: every page that shows patient data, and the accounts behind it
        "view",
        "download",
        "patient",
        "review.view",
        "login",
        "login.failed",
        "logout",
        "user.add",
        "user.passwd",
        "user.disable",
        "user.enable",
        "user.role",
        "user.unlock",
        "forbidden",
        # the patient index and the registration system's ADT feed (HL7 inbound)
        "patients.import",
        "patients.list",
        "patients.show",
        "hl7.receive",
        "patient.merge",
        "patient.merge.move",
        "patient.unmerge",
        "patient.unmerge.move",
        "patients.merges",
        # documents handed to the EHR (outbound): each attempt, the receiver's answer, an operator's retry
        # chart preparation: appointments in, packets built and opened (they show PHI)
        "appointments.import",
        "appointments.list",
        "prep.build",
        "prep.open",
        "prep.list",
        # paper originals in off-site boxes
        "box.assign",
        "box.close",
        "box.ship",
        "box.recall",
        "box.destroy",
        "box.list",
        "box.show",
        "ehr.send",
        "ehr.ack",
        "ehr.retry",
        "ehr.status",
        # the document-type model reads every labelled document's text
        "classifier.train",
        "classifier.status",
        # requests for information: each one's life, and who looked at the queue
        "request.add",
        "request.list",
        "request.show",
        "request.extend",
        "request.link_auth",
        "request.fulfil",
        "request.deny",
        "request.withdraw",
        "request.letter",
        "request.report",
        # moving an embedded deployment into the shared database
        "db.import",
    }
)


class AuditError(MedarchiveError):
    """The audit trail cannot be written or read as asked."""


def audit_dir(config: Config) -> Path:
    return config.root / "audit"


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


def acting_user(explicit: str | None) -> str:
    """The --user an operator gave when acting for someone, else the OS user."""
    if explicit is None:
        return os_user()
    name = explicit.strip()
    if not name:
        raise AuditError("--user was given without a name; name the person you act for, or leave it out")
    return name


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _seal(body: dict) -> dict:
    return {**body, "hash": hashlib.sha256(_canonical(body)).hexdigest()}


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of checking a chained log; ``line`` is the first broken line (1-based)."""

    ok: bool
    entries: int
    head: str
    line: int | None = None
    problem: str | None = None


class ChainedLog:
    """Append-only JSON lines, each sealed with a hash over its content and the previous hash.

    Writers from any number of processes serialise on an exclusive flock of the
    log file, held from reading the last entry until the new one is on disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_name(path.stem + ".head.json")

    def append(self, body: dict) -> dict:
        """Seal ``body`` after the last entry, write it durably and return the sealed entry."""
        ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = self._last_entry(fd)
            self._check_not_cut(last)
            entry = _seal({**body, "seq": last["seq"] + 1 if last else 1, "prev": last["hash"] if last else GENESIS})
            _write_all(fd, _canonical(entry) + b"\n")
            os.fsync(fd)
            atomic_write_json(self.head_path, {"seq": entry["seq"], "hash": entry["hash"]})
        finally:
            os.close(fd)  # also releases the lock
        return entry

    def entries(self) -> Iterator[dict]:
        """Every complete entry, oldest first (an entry being written is not yet complete)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for line, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    return
                try:
                    yield json.loads(raw)
                except ValueError:
                    raise AuditError(
                        f"line {line} of {self.path} is not valid JSON; run `medarchive audit verify`"
                    ) from None

    def _check_not_cut(self, last: dict | None) -> None:
        # Appending after lines were cut off the end would overwrite the head
        # and hide the cut, so the log refuses until it is restored.
        head = self._read_head()
        written = head.get("seq", 0) if head else 0
        if written > (last["seq"] if last else 0):
            raise AuditError(
                f"{self.path} has lost entries (entry {written} was written, the log ends before it), so nothing more "
                "can be recorded; run `medarchive audit verify` and have an administrator restore the log from a backup"
            )

    def verify(self) -> ChainCheck:
        """Check every entry's hash and link, then that nothing was cut off the end."""
        if not self.path.exists():
            return self._against_head(self._read_head(), 0, GENESIS, None)
        prev, count, at_head = GENESIS, 0, None
        with self._locked(fcntl.LOCK_SH) as handle:
            head = self._read_head()
            head_seq = head.get("seq") if head else None
            for count, raw in enumerate(handle, 1):
                problem = _line_problem(raw, prev, count)
                if problem:
                    return ChainCheck(False, count - 1, prev, count, problem)
                prev = json.loads(raw)["hash"]
                if count == head_seq:
                    at_head = prev
        return self._against_head(head, count, prev, at_head)

    def _against_head(self, head: dict | None, count: int, last: str, at_head: str | None) -> ChainCheck:
        name = self.head_path.name
        if not head:
            if count:
                return ChainCheck(
                    False, count, last, count + 1, f"{name} is missing: entries may have been cut off the end"
                )
            return ChainCheck(True, 0, GENESIS)
        seq = head.get("seq", 0)
        # A head behind the log is a crash between appending and updating the head.
        if seq > count:
            return ChainCheck(
                False,
                count,
                last,
                count + 1,
                f"the log ends at entry {count} but entry {seq} was written: entries were removed from the end",
            )
        if at_head != head.get("hash"):
            return ChainCheck(False, count, last, seq, f"entry {seq} is not the one recorded in {name}")
        return ChainCheck(True, count, last)

    def _read_head(self) -> dict | None:
        try:
            return read_json(self.head_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AuditError(f"cannot read {self.head_path}: {exc}; restore it from a backup") from None

    @contextmanager
    def _locked(self, how: int) -> Iterator[BinaryIO]:
        with open(self.path, "rb") as handle:
            fcntl.flock(handle, how)
            yield handle

    def _last_entry(self, fd: int) -> dict | None:
        raw = _last_line(fd)
        if not raw:
            return None
        try:
            entry = json.loads(raw) if raw.endswith(b"\n") else None
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "seq" not in entry or "hash" not in entry:
            raise AuditError(
                f"the last line of {self.path} is damaged, so nothing more can be recorded; "
                "run `medarchive audit verify` and have an administrator restore the log from a backup"
            )
        return entry


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _last_line(fd: int) -> bytes:
    """The last line of the file (with its newline, if it has one), read from the end."""
    pos = os.fstat(fd).st_size
    tail = b""
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1 :]
    return tail


def _line_problem(raw: bytes, prev: str, seq: int) -> str | None:
    if not raw.endswith(b"\n"):
        return "the line is incomplete (a write was cut short)"
    try:
        entry = json.loads(raw)
    except ValueError:
        return "the line is not valid JSON (it was edited)"
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        return "the line carries no hash (it was edited)"
    body = {k: v for k, v in entry.items() if k != "hash"}
    if _seal(body)["hash"] != entry["hash"]:
        return "the content does not match its hash (the entry was edited)"
    if entry.get("prev") != prev:
        return "it does not follow the entry before it (an entry was deleted, inserted or moved)"
    if entry.get("seq") != seq:
        return f"it is numbered {entry.get('seq')} where {seq} was expected (entries were deleted or inserted)"
    return None


@dataclass(frozen=True)
class AuditFilters:
    """Which entries to list; dates (YYYY-MM-DD) are inclusive and compared in UTC."""

    mrn: str | None = None
    user: str | None = None
    action: str | None = None
    doc_id: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def match(self, entry: dict) -> bool:
        day = entry.get("at", "")[:10]
        return (
            (self.mrn is None or self.mrn in entry.get("mrns", ()))
            and (self.user is None or self.user in (entry.get("user"), entry.get("os_user")))
            and (self.action is None or entry.get("action") == self.action)
            and (self.doc_id is None or self.doc_id in entry.get("doc_ids", ()))
            and (self.date_from is None or day >= self.date_from)
            and (self.date_to is None or day <= self.date_to)
        )


def bounded(value: object) -> object:
    """``value`` with every string (keys too) longer than MAX_VALUE_CHARS cut to its start,
    its length and its SHA-256."""
    if isinstance(value, str):
        if len(value) <= MAX_VALUE_CHARS:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{value[:_KEPT_CHARS]}... ({len(value)} characters, sha256 {digest})"
    if isinstance(value, dict):
        return {bounded(key): bounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [bounded(item) for item in value]
    return value


class DatabaseChainedLog:
    """A chained log as rows of the shared database: ``entry`` is the line the file would hold."""

    def __init__(self, db: Database, chain: str) -> None:
        self._db = db
        self.chain = chain
        self.path = f"the shared database (audit chain {chain})"

    def append(self, body: dict) -> dict:
        with self._db.transaction() as tx:
            last = self._last(tx)
            head = tx.execute("SELECT seq FROM heads WHERE chain = ?", (self.chain,))
            if head and head[0]["seq"] > (last["seq"] if last else 0):
                raise AuditError(
                    f"{self.path} has lost entries (entry {head[0]['seq']} was written, the chain ends before it), "
                    "so nothing more can be recorded; run `medarchive audit verify` and restore the database"
                )
            entry = _seal({**body, "seq": last["seq"] + 1 if last else 1, "prev": last["hash"] if last else GENESIS})
            self._insert(tx, entry)
        return entry

    def append_sealed(self, entry: dict) -> None:
        """Continue the chain with an entry sealed elsewhere (moving a file's chain in), unchanged;
        refused unless it follows the last entry here."""
        with self._db.transaction() as tx:
            last = self._last(tx)
            follows = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
            if (entry.get("seq"), entry.get("prev")) != follows:
                raise AuditError(f"entry {entry.get('seq')} does not follow the last entry of {self.path}")
            self._insert(tx, entry)

    def hash_at(self, seq: int) -> str | None:
        rows = self._db.query("SELECT entry FROM entries WHERE chain = ? AND seq = ?", (self.chain, seq))
        return json.loads(rows[0]["entry"])["hash"] if rows else None

    def _last(self, tx: Transaction) -> dict | None:
        """The last entry, read under the chain's lock (held until the transaction ends)."""
        tx.lock(f"audit:{self.chain}")
        rows = tx.execute("SELECT entry FROM entries WHERE chain = ? ORDER BY seq DESC LIMIT 1", (self.chain,))
        return json.loads(rows[0]["entry"]) if rows else None

    def _insert(self, tx: Transaction, entry: dict) -> None:
        tx.execute(
            "INSERT INTO entries (chain, seq, entry) VALUES (?, ?, ?)",
            (self.chain, entry["seq"], _canonical(entry).decode("utf-8")),
        )
        tx.execute(
            "INSERT INTO heads (chain, seq, hash) VALUES (?, ?, ?) "
            "ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (self.chain, entry["seq"], entry["hash"]),
        )

    def _rows(self) -> Iterator[Row]:
        after = 0
        while rows := self._db.query(
            "SELECT seq, entry FROM entries WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?",
            (self.chain, after, _PAGE),
        ):
            yield from rows
            after = rows[-1]["seq"]

    def entries(self) -> Iterator[dict]:
        for row in self._rows():
            yield json.loads(row["entry"])

    def verify(self) -> ChainCheck:
        heads = self._db.query("SELECT seq, hash FROM heads WHERE chain = ?", (self.chain,))
        head = {"seq": heads[0]["seq"], "hash": heads[0]["hash"]} if heads else None
        prev, count, at_head = GENESIS, 0, None
        for count, row in enumerate(self._rows(), 1):
            problem = _line_problem(row["entry"].encode("utf-8") + b"\n", prev, count)
            if problem:
                return ChainCheck(False, count - 1, prev, count, problem)
            prev = json.loads(row["entry"])["hash"]
            if head and count == head["seq"]:
                at_head = prev
        if not head:
            return (
                ChainCheck(True, 0, GENESIS)
                if not count
                else ChainCheck(
                    False, count, prev, count + 1, "the chain's head row is missing: entries may have been removed"
                )
            )
        if head["seq"] > count:
            return ChainCheck(
                False,
                count,
                prev,
                count + 1,
                f"the chain ends at entry {count} but entry {head['seq']} was written: entries were removed from the end",
            )
        if at_head != head["hash"]:
            return ChainCheck(
                False, count, prev, head["seq"], f"entry {head['seq']} is not the one its head row records"
            )
        return ChainCheck(True, count, prev)


def chained_log(config: Config, name: str) -> ChainedLog | DatabaseChainedLog:
    """The chain ``name`` (audit, destruction): a file under ``audit/``, or rows of the shared database."""
    if config.database.url is not None:
        return DatabaseChainedLog(open_store(config, SCHEMA), name)
    return ChainedLog(audit_dir(config) / f"{name}.jsonl")


class AuditLog:
    """Who did what to which patient's records, when, why and with what outcome."""

    def __init__(self, path: Path | DatabaseChainedLog) -> None:
        self._log = ChainedLog(path) if isinstance(path, Path) else path

    @classmethod
    def for_config(cls, config: Config) -> AuditLog:
        log = chained_log(config, "audit")
        return cls(log.path if isinstance(log, ChainedLog) else log)

    @property
    def path(self) -> Path | str:
        return self._log.path

    def record(
        self,
        action: str,
        *,
        user: str,
        doc_ids: Iterable[str] = (),
        mrns: Iterable[str | None] = (),
        outcome: str = "ok",
        details: dict | None = None,
        reason: str | None = None,
    ) -> dict:
        """Append one entry; ``user`` is acting_user(...), ``reason`` why (e.g. the purpose given)."""
        if action not in ACTIONS:
            raise AuditError(f"unknown audit action {action!r}; use one of {', '.join(sorted(ACTIONS))}")
        if not user or not outcome:
            raise AuditError("an audit entry needs the acting user and the outcome")
        entry = {
            "at": now_utc(),
            "user": user,
            "os_user": os_user(),
            "host": socket.gethostname(),
            "action": action,
            "doc_ids": sorted(set(doc_ids)),
            "mrns": sorted({m for m in mrns if m}),
            "outcome": outcome,
            "reason": reason,
            "details": details or {},
        }
        return self._log.append({key: bounded(value) for key, value in entry.items()})

    def entries(self, filters: AuditFilters = AuditFilters()) -> Iterator[dict]:
        return (entry for entry in self._log.entries() if filters.match(entry))

    def verify(self) -> ChainCheck:
        return self._log.verify()
