"""The patient index in SQLite (``<data root>/patients.sqlite``): who each MRN is, and merges.

The registration system keeps it current over HL7 ADT (pipeline/ehr/listener.py); a
CSV export can be imported (`medarchive patients import`). Identification reads it
through ``PatientRoster``, which answers exactly as the CSV ``Roster`` does, and
``resolve_mrn`` follows a retired (merged) MRN to the patient who survives it.

The file is 0600 in WAL mode, so the daemon reads while the listener writes. It also
holds the merge journal (``merges``, ``merge_moves``) that makes an A40 resumable.
With ``database.url`` set it is the ``patients`` schema of the shared database instead
(``pipeline.stores``), the same SQL on both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.identify.roster import (
    _CONFUSABLE,
    Roster,
    RosterPatient,
    _compact_mrn,
    _first_key,
    _last_key,
    _split_name,
)
from pipeline.stores import Database, Migration, Row, Schema, Transaction, open_store

FILE_NAME = "patients.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    mrn TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    given TEXT NOT NULL DEFAULT '',
    dob TEXT NOT NULL,
    sex TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'merged')),
    merged_into TEXT,
    updated_at TEXT NOT NULL,
    last_key TEXT NOT NULL,
    first_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_by_name_dob ON patients (last_key, first_key, dob) WHERE status = 'active';
CREATE TABLE IF NOT EXISTS aliases (
    mrn TEXT PRIMARY KEY,
    survivor TEXT NOT NULL,
    merged_at TEXT NOT NULL,
    control_id TEXT
);
CREATE TABLE IF NOT EXISTS merges (
    id INTEGER PRIMARY KEY,
    prior TEXT NOT NULL,
    survivor TEXT NOT NULL,
    control_id TEXT,
    requested_by TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('moving', 'done')),
    received_at TEXT NOT NULL,
    finished_at TEXT,
    moved INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS merge_moves (
    merge_id INTEGER NOT NULL REFERENCES merges (id),
    doc_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('moving', 'done')),
    PRIMARY KEY (merge_id, doc_id)
);
"""
SCHEMA = Schema("patients", (Migration(1, _SCHEMA),), file=FILE_NAME)
SCHEMA_VERSION = SCHEMA.version

Change = Literal["created", "updated", "unchanged"]


class PatientIndexError(MedarchiveError):
    """The patient index cannot be read or changed as asked (the message says why)."""


@dataclass(frozen=True)
class Patient:
    mrn: str
    family: str
    given: str
    dob: str  # ISO 8601
    sex: str | None = None
    status: Literal["active", "merged"] = "active"
    merged_into: str | None = None
    updated_at: str | None = None

    def as_roster_patient(self) -> RosterPatient:
        return RosterPatient(self.mrn, self.family, self.given, self.dob)


@dataclass(frozen=True)
class Merge:
    id: int
    prior: str
    survivor: str
    control_id: str | None
    requested_by: str
    state: str
    moved: int


def index_path(config: Config) -> Path:
    return config.root / FILE_NAME


class PatientIndex:
    """The patient index's database, usable from several threads of one process."""

    def __init__(self, db: Database, path: Path | str) -> None:
        self._db = db
        self.path = path

    @classmethod
    def for_config(cls, config: Config) -> PatientIndex:
        where = index_path(config) if config.database.url is None else "the shared database (patients)"
        return cls(open_store(config, SCHEMA), where)

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> AbstractContextManager[Transaction]:
        """All or nothing, durable at the end (writers queue, never deadlock)."""
        return self._db.transaction()

    def query(self, sql: str, params: tuple = ()) -> list[Row]:
        return self._db.query(sql, params)

    # -- patients ------------------------------------------------------------

    def count(self) -> int:
        return self.query("SELECT count(*) AS n FROM patients WHERE status = 'active'")[0]["n"]

    def get(self, mrn: str) -> Patient | None:
        rows = self.query("SELECT * FROM patients WHERE mrn = ?", (mrn,))
        return _patient(rows[0]) if rows else None

    def patients(self, status: str | None = None) -> list[Patient]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        return [_patient(r) for r in self.query(f"SELECT * FROM patients {where} ORDER BY mrn", params)]

    def upsert(self, patient: Patient) -> Change:
        """Create the patient or bring its demographics up to date; a retired MRN is refused."""
        with self.transaction() as db:
            return _upsert(db, patient)

    def import_roster(self, roster_patients: list[RosterPatient]) -> dict[str, int]:
        """Upsert every roster row in one transaction; rows of retired MRNs are skipped."""
        counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped (merged)": 0}
        with self.transaction() as db:
            retired = {r["mrn"] for r in db.execute("SELECT mrn FROM aliases")}
            for p in roster_patients:
                if p.mrn in retired:
                    counts["skipped (merged)"] += 1
                    continue
                counts[_upsert(db, Patient(p.mrn, p.last, p.first, p.dob))] += 1
        return counts

    # -- merges --------------------------------------------------------------

    def survivor_of(self, mrn: str) -> str | None:
        """The active MRN a retired one now lives under (following merges of merges)."""
        seen = {mrn}
        current = mrn
        while rows := self.query("SELECT survivor FROM aliases WHERE mrn = ?", (current,)):
            current = rows[0]["survivor"]
            if current in seen:
                raise PatientIndexError(f"the merges of MRN {mrn} form a loop; check the aliases table of {self.path}")
            seen.add(current)
        return None if current == mrn else current

    def record_merge(
        self, prior: str, survivor: str, *, survivor_patient: Patient | None, control_id: str | None, requested_by: str
    ) -> tuple[Merge, bool]:
        """Retire ``prior`` into ``survivor`` and open a merge journal entry, in one transaction.

        Returns the entry and whether it is new: repeating a merge already recorded returns
        its entry (a resent A40 is not an error).
        """
        if prior == survivor:
            raise PatientIndexError(f"cannot merge MRN {prior} into itself")
        with self.transaction() as db:
            db.lock("patients:merges")  # two listeners merging at once must not cross
            done = _first(db.execute("SELECT survivor FROM aliases WHERE mrn = ?", (prior,)))
            if done is not None:
                if done["survivor"] != survivor:
                    raise PatientIndexError(f"MRN {prior} was already merged into {done['survivor']}, not {survivor}")
                row = db.execute(
                    "SELECT * FROM merges WHERE prior = ? AND survivor = ? ORDER BY id DESC", (prior, survivor)
                )[0]
                return _merge(row), False
            if db.execute("SELECT 1 FROM aliases WHERE mrn = ?", (survivor,)):
                raise PatientIndexError(
                    f"the surviving MRN {survivor} is itself retired; send the merge for the MRN it was merged into"
                )
            if survivor_patient is not None:
                _upsert(db, survivor_patient)
            elif not db.execute("SELECT 1 FROM patients WHERE mrn = ?", (survivor,)):
                raise PatientIndexError(
                    f"the surviving MRN {survivor} is not in the patient index and the message has no name and birth date for it"
                )
            now = now_utc()
            db.execute(
                "UPDATE patients SET status = 'merged', merged_into = ?, updated_at = ? WHERE mrn = ?",
                (survivor, now, prior),
            )
            # Earlier merges into the prior MRN now lead to the survivor directly.
            db.execute("UPDATE aliases SET survivor = ? WHERE survivor = ?", (survivor, prior))
            db.execute("UPDATE patients SET merged_into = ? WHERE merged_into = ?", (survivor, prior))
            db.execute(
                "INSERT INTO aliases (mrn, survivor, merged_at, control_id) VALUES (?, ?, ?, ?)",
                (prior, survivor, now, control_id),
            )
            (created,) = db.execute(
                "INSERT INTO merges (prior, survivor, control_id, requested_by, state, received_at) "
                "VALUES (?, ?, ?, ?, 'moving', ?) RETURNING *",
                (prior, survivor, control_id, requested_by, now),
            )
            return _merge(created), True

    def open_merges(self) -> list[Merge]:
        return [_merge(r) for r in self.query("SELECT * FROM merges WHERE state = 'moving' ORDER BY id")]

    def merge(self, merge_id: int) -> Merge:
        return _merge(self.query("SELECT * FROM merges WHERE id = ?", (merge_id,))[0])


def _first(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None


def _patient(row: Row) -> Patient:
    return Patient(
        row["mrn"],
        row["family"],
        row["given"],
        row["dob"],
        row["sex"],
        row["status"],
        row["merged_into"],
        row["updated_at"],
    )


def _merge(row: Row) -> Merge:
    return Merge(
        row["id"], row["prior"], row["survivor"], row["control_id"], row["requested_by"], row["state"], row["moved"]
    )


def _upsert(db: Transaction, patient: Patient) -> Change:
    row = _first(db.execute("SELECT * FROM patients WHERE mrn = ?", (patient.mrn,)))
    if row is not None and row["status"] == "merged":
        raise PatientIndexError(
            f"MRN {patient.mrn} was merged into {row['merged_into']}; send updates for the surviving MRN"
        )
    family, given = patient.family.upper(), patient.given.upper()
    sex = patient.sex if patient.sex is not None else (row["sex"] if row is not None else None)
    if row is not None and (row["family"], row["given"], row["dob"], row["sex"]) == (family, given, patient.dob, sex):
        return "unchanged"
    db.execute(
        "INSERT INTO patients (mrn, family, given, dob, sex, status, updated_at, last_key, first_key) "
        "VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?) "
        "ON CONFLICT (mrn) DO UPDATE SET family = excluded.family, given = excluded.given, dob = excluded.dob, "
        "sex = excluded.sex, updated_at = excluded.updated_at, last_key = excluded.last_key, first_key = excluded.first_key",
        (patient.mrn, family, given, patient.dob, sex, now_utc(), _last_key(family), _first_key(given)),
    )
    return "created" if row is None else "updated"


class PatientRoster:
    """The ``Roster`` interface (get, confusable, by_name_dob, len) over the SQLite index.

    Queries are live, so a patient the listener registers is known to the next document.
    ``get`` answers for a retired MRN too (the document shows it and names the same
    person); ``resolve_mrn`` then files under the survivor. ``by_name_dob`` counts active
    patients only, or a merged record and its survivor would always be two matches.
    """

    def __init__(self, index: PatientIndex) -> None:
        self.index = index

    def __len__(self) -> int:
        return self.index.count()

    def get(self, mrn: str) -> RosterPatient | None:
        mrn = _compact_mrn(mrn)
        found = self.index.get(mrn)
        if found is None and (survivor := self.index.survivor_of(mrn)) is not None:
            found = self.index.get(survivor)
        return found.as_roster_patient() if found is not None else None

    def confusable(self, mrn: str) -> list[RosterPatient]:
        read = _compact_mrn(mrn)
        near = sorted({read[:i] + alt + read[i + 1 :] for i, ch in enumerate(read) for alt in _CONFUSABLE.get(ch, "")})
        if not near:
            return []
        marks = ",".join("?" * len(near))
        rows = self.index.query(f"SELECT * FROM patients WHERE mrn IN ({marks}) ORDER BY mrn", tuple(near))
        return [_patient(r).as_roster_patient() for r in rows]

    def by_name_dob(self, name: str, dob: str) -> list[RosterPatient]:
        parts = _split_name(name)
        if parts is None:
            return []
        rows = self.index.query(
            "SELECT * FROM patients WHERE last_key = ? AND first_key = ? AND dob = ? AND status = 'active' ORDER BY mrn",
            (*parts, dob),
        )
        return [_patient(r).as_roster_patient() for r in rows]


def resolve_mrn(index: PatientIndex, mrn: str) -> tuple[str, str | None]:
    """The MRN to file under, and the note for the document's history when it is not ``mrn``."""
    survivor = index.survivor_of(mrn)
    if survivor is None:
        return mrn, None
    return survivor, f"MRN {mrn} was retired by a merge into MRN {survivor}; filed under {survivor}"


def load_patient_index(config: Config) -> PatientRoster | Roster | None:
    """What identification checks documents against: the SQLite index once it holds
    patients, else the CSV roster of ``roster.path``, else nothing."""
    if config.database.url is not None or index_path(config).exists():
        index = PatientIndex.for_config(config)
        if index.count():
            return PatientRoster(index)
        index.close()
    if config.roster.path:
        return Roster.load(config.resolve(config.roster.path), config.roster)
    return None
