"""The patient index in SQLite (``<data root>/patients.sqlite``): who each MRN is, and merges.

The registration system keeps it current over HL7 ADT (pipeline/ehr/listener.py); a
CSV export can be imported (`medarchive patients import`). Identification reads it
through ``PatientRoster``, which answers exactly as the CSV ``Roster`` does, and
``resolve_mrn`` follows a retired (merged) MRN to the patient who survives it.

The file is 0600 in WAL mode, so the daemon reads while the listener writes. It also
holds the merge journal (``merges``, ``merge_moves``) that makes an A40 (and the A37
that undoes it) resumable, the merges held for a clerk (``merge_reviews``) and every
earlier name and birth date of a patient (``patient_history``). With ``database.url`` set
it is the ``patients`` schema of the shared database instead (``pipeline.stores``), the same SQL on both.
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

# Version 2: merges held for review, unmerges (a journal entry of kind 'unmerge' moves the
# documents of the merge it undoes back), and the demographics each change replaced.
_SCHEMA_2 = """
ALTER TABLE merges ADD COLUMN kind TEXT NOT NULL DEFAULT 'merge';
ALTER TABLE merges ADD COLUMN undoes INTEGER;
ALTER TABLE merges ADD COLUMN undone_by INTEGER;
ALTER TABLE merges ADD COLUMN reason TEXT;
CREATE TABLE IF NOT EXISTS merge_reviews (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('merge', 'unmerge')),
    prior TEXT NOT NULL,
    survivor TEXT NOT NULL,
    family TEXT,
    given TEXT,
    dob TEXT,
    sex TEXT,
    control_id TEXT,
    requested_by TEXT NOT NULL,
    received_at TEXT NOT NULL,
    held_because TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'rejected')),
    decided_by TEXT,
    decided_at TEXT,
    decision_reason TEXT,
    merge_id INTEGER
);
CREATE INDEX IF NOT EXISTS merge_reviews_pending ON merge_reviews (state, id);
CREATE TABLE IF NOT EXISTS patient_history (
    id INTEGER PRIMARY KEY,
    mrn TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    source TEXT,
    family TEXT NOT NULL,
    given TEXT NOT NULL,
    dob TEXT NOT NULL,
    sex TEXT,
    new_family TEXT NOT NULL,
    new_given TEXT NOT NULL,
    new_dob TEXT NOT NULL,
    new_sex TEXT
);
CREATE INDEX IF NOT EXISTS patient_history_by_mrn ON patient_history (mrn, id);
"""
SCHEMA = Schema("patients", (Migration(1, _SCHEMA), Migration(2, _SCHEMA_2)), file=FILE_NAME)
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
    """One entry of the merge journal: a merge (prior → survivor) or the unmerge that undoes one."""

    id: int
    prior: str
    survivor: str
    control_id: str | None
    requested_by: str
    state: str
    moved: int
    kind: Literal["merge", "unmerge"] = "merge"
    undoes: int | None = None  # an unmerge: the merge it undoes
    undone_by: int | None = None  # a merge: the unmerge that undid it
    reason: str | None = None
    received_at: str | None = None


@dataclass(frozen=True)
class Review:
    """A merge or unmerge from the feed held until a clerk confirms or rejects it."""

    id: int
    kind: Literal["merge", "unmerge"]
    prior: str
    survivor: str
    patient: Patient | None  # the survivor as the message described it (PID), when it did
    control_id: str | None
    requested_by: str
    received_at: str
    held_because: str
    state: Literal["pending", "confirmed", "rejected"]
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    merge_id: int | None = None


@dataclass(frozen=True)
class DemographicChange:
    """A patient's name or birth date before a change, and what replaced it."""

    mrn: str
    changed_at: str
    changed_by: str
    source: str | None
    old: tuple[str, str, str, str | None]  # family, given, dob, sex
    new: tuple[str, str, str, str | None]


def retired_note(prior: str, survivor: str) -> str:
    """The correction a document read with a retired MRN carries (an unmerge looks for it)."""
    return f"MRN {prior} was retired by a merge into MRN {survivor}; filed under {survivor}"


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

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
        return self._db.query(sql, params)

    # -- patients ------------------------------------------------------------

    def count(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM patients WHERE status = 'active'")[0]["n"])

    def get(self, mrn: str) -> Patient | None:
        rows = self.query("SELECT * FROM patients WHERE mrn = ?", (mrn,))
        return _patient(rows[0]) if rows else None

    def patients(self, status: str | None = None) -> list[Patient]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        return [_patient(r) for r in self.query(f"SELECT * FROM patients {where} ORDER BY mrn", params)]

    def upsert(self, patient: Patient, *, changed_by: str = "", source: str | None = None) -> Change:
        """Create the patient or bring its demographics up to date (the old ones kept in the
        history); a retired MRN is refused."""
        with self.transaction() as db:
            return _upsert(db, patient, changed_by, source)

    def import_roster(self, roster_patients: list[RosterPatient], *, changed_by: str = "") -> dict[str, int]:
        """Upsert every roster row in one transaction; rows of retired MRNs are skipped."""
        counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped (merged)": 0}
        with self.transaction() as db:
            retired = {r["mrn"] for r in db.execute("SELECT mrn FROM aliases")}
            for p in roster_patients:
                if p.mrn in retired:
                    counts["skipped (merged)"] += 1
                    continue
                counts[_upsert(db, Patient(p.mrn, p.last, p.first, p.dob), changed_by, "import")] += 1
        return counts

    def history(self, mrn: str) -> list[DemographicChange]:
        """Every change of the patient's name, birth date or sex, oldest first."""
        rows = self.query("SELECT * FROM patient_history WHERE mrn = ? ORDER BY id", (mrn,))
        return [
            DemographicChange(
                r["mrn"],
                r["changed_at"],
                r["changed_by"],
                r["source"],
                (r["family"], r["given"], r["dob"], r["sex"]),
                (r["new_family"], r["new_given"], r["new_dob"], r["new_sex"]),
            )
            for r in rows
        ]

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
        with self.transaction() as db:
            db.lock("patients:merges")  # two listeners merging at once must not cross
            return _record_merge(db, prior, survivor, survivor_patient, control_id, requested_by)

    def open_merges(self) -> list[Merge]:
        """Journal entries (merges and unmerges) whose documents are still to move, oldest first."""
        return [_merge(r) for r in self.query("SELECT * FROM merges WHERE state = 'moving' ORDER BY id")]

    def merge(self, merge_id: int) -> Merge:
        rows = self.query("SELECT * FROM merges WHERE id = ?", (merge_id,))
        if not rows:
            raise PatientIndexError(f"no merge {merge_id} in the merge journal")
        return _merge(rows[0])

    def merges(self) -> list[Merge]:
        return [_merge(r) for r in self.query("SELECT * FROM merges ORDER BY id")]

    def applied_merge(self, one: str, other: str) -> Merge | None:
        """The merge, not undone, that retired one of the two MRNs into the other (either way round)."""
        rows = self.query(
            "SELECT * FROM merges WHERE kind = 'merge' AND undone_by IS NULL "
            "AND ((prior = ? AND survivor = ?) OR (prior = ? AND survivor = ?)) ORDER BY id DESC",
            (one, other, other, one),
        )
        return _merge(rows[0]) if rows else None

    def record_unmerge(self, merge: Merge, *, requested_by: str, control_id: str | None, reason: str | None) -> Merge:
        """Give the retired MRN back its own record and open the journal entry that moves its documents back."""
        with self.transaction() as db:
            return _record_unmerge(db, merge.id, requested_by, control_id, reason)

    # -- merges held for a clerk ---------------------------------------------

    def hold(
        self,
        kind: Literal["merge", "unmerge"],
        prior: str,
        survivor: str,
        *,
        patient: Patient | None,
        control_id: str | None,
        requested_by: str,
        held_because: str,
    ) -> tuple[Review, bool]:
        """Queue a merge or unmerge for a clerk; a resent message finds the pending entry (False)."""
        with self.transaction() as db:
            row = _first(
                db.execute(
                    "SELECT * FROM merge_reviews WHERE state = 'pending' AND kind = ? AND prior = ? AND survivor = ?",
                    (kind, prior, survivor),
                )
            )
            if row is not None:
                return _review(row), False
            p = patient
            inserted = db.execute(
                "INSERT INTO merge_reviews (kind, prior, survivor, family, given, dob, sex, control_id, requested_by, "
                "received_at, held_because, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING id",
                (
                    kind,
                    prior,
                    survivor,
                    p.family.upper() if p else None,
                    p.given.upper() if p else None,
                    p.dob if p else None,
                    p.sex if p else None,
                    control_id,
                    requested_by,
                    now_utc(),
                    held_because,
                ),
            )
            return _review(db.execute("SELECT * FROM merge_reviews WHERE id = ?", (inserted[0]["id"],))[0]), True

    def reviews(self, state: str | None = "pending") -> list[Review]:
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        return [_review(r) for r in self.query(f"SELECT * FROM merge_reviews {where} ORDER BY id", params)]

    def review(self, review_id: int) -> Review:
        rows = self.query("SELECT * FROM merge_reviews WHERE id = ?", (review_id,))
        if not rows:
            raise PatientIndexError(f"no held merge {review_id} (see `medarchive patients merges`)")
        return _review(rows[0])

    def confirm(self, review_id: int, *, user: str) -> Merge:
        """Carry out a held merge or unmerge as its journal entry (the documents move afterwards)."""
        with self.transaction() as db:
            review = _pending(db, review_id)
            if review.kind == "merge":
                # The message's demographics register a survivor the index does not know; a known one keeps its own.
                known = _first(db.execute("SELECT 1 FROM patients WHERE mrn = ?", (review.survivor,)))
                merge, _ = _record_merge(
                    db,
                    review.prior,
                    review.survivor,
                    None if known else review.patient,
                    review.control_id,
                    review.requested_by,
                )
            else:
                applied = _applied(db, review.prior, review.survivor)
                if applied is None:
                    raise PatientIndexError(f"MRN {review.prior} is not merged into {review.survivor} any more")
                merge = _record_unmerge(db, applied, review.requested_by, review.control_id, f"confirmed by {user}")
            db.execute(
                "UPDATE merge_reviews SET state = 'confirmed', decided_by = ?, decided_at = ?, merge_id = ? WHERE id = ?",
                (user, now_utc(), merge.id, review_id),
            )
            return merge

    def reject(self, review_id: int, *, user: str, reason: str) -> Review:
        if not reason.strip():
            raise PatientIndexError("say why the merge is rejected (--reason)")
        with self.transaction() as db:
            _pending(db, review_id)
            db.execute(
                "UPDATE merge_reviews SET state = 'rejected', decided_by = ?, decided_at = ?, decision_reason = ? "
                "WHERE id = ?",
                (user, now_utc(), reason.strip(), review_id),
            )
            return _review(db.execute("SELECT * FROM merge_reviews WHERE id = ?", (review_id,))[0])


def _pending(db: Transaction, review_id: int) -> Review:
    row = _first(db.execute("SELECT * FROM merge_reviews WHERE id = ?", (review_id,)))
    if row is None:
        raise PatientIndexError(f"no held merge {review_id} (see `medarchive patients merges`)")
    review = _review(row)
    if review.state != "pending":
        raise PatientIndexError(f"held merge {review_id} was already {review.state} by {review.decided_by}")
    return review


def _record_merge(
    db: Transaction,
    prior: str,
    survivor: str,
    survivor_patient: Patient | None,
    control_id: str | None,
    requested_by: str,
) -> tuple[Merge, bool]:
    if prior == survivor:
        raise PatientIndexError(f"cannot merge MRN {prior} into itself")
    done = _first(db.execute("SELECT survivor FROM aliases WHERE mrn = ?", (prior,)))
    if done is not None:
        if done["survivor"] != survivor:
            raise PatientIndexError(f"MRN {prior} was already merged into {done['survivor']}, not {survivor}")
        row = db.execute(
            "SELECT * FROM merges WHERE prior = ? AND survivor = ? AND kind = 'merge' ORDER BY id DESC",
            (prior, survivor),
        )[0]
        return _merge(row), False
    if _first(db.execute("SELECT 1 FROM aliases WHERE mrn = ?", (survivor,))):
        raise PatientIndexError(
            f"the surviving MRN {survivor} is itself retired; send the merge for the MRN it was merged into"
        )
    if survivor_patient is not None:
        _upsert(db, survivor_patient, requested_by, control_id)
    elif _first(db.execute("SELECT 1 FROM patients WHERE mrn = ?", (survivor,))) is None:
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
    inserted = db.execute(
        "INSERT INTO merges (prior, survivor, control_id, requested_by, state, received_at) "
        "VALUES (?, ?, ?, ?, 'moving', ?) RETURNING id",
        (prior, survivor, control_id, requested_by, now),
    )
    return _merge(db.execute("SELECT * FROM merges WHERE id = ?", (inserted[0]["id"],))[0]), True


def _applied(db: Transaction, prior: str, survivor: str) -> int | None:
    row = _first(
        db.execute(
            "SELECT id FROM merges WHERE kind = 'merge' AND undone_by IS NULL AND prior = ? AND survivor = ? "
            "ORDER BY id DESC",
            (prior, survivor),
        )
    )
    return row["id"] if row else None


def _record_unmerge(
    db: Transaction, merge_id: int, requested_by: str, control_id: str | None, reason: str | None
) -> Merge:
    merge = _merge(db.execute("SELECT * FROM merges WHERE id = ?", (merge_id,))[0])
    if merge.kind != "merge" or merge.undone_by is not None:
        raise PatientIndexError(f"merge {merge.id} of MRN {merge.prior} into {merge.survivor} was already undone")
    onward = _first(db.execute("SELECT survivor FROM aliases WHERE mrn = ?", (merge.survivor,)))
    if onward is not None:
        raise PatientIndexError(
            f"MRN {merge.survivor} has since been merged into {onward['survivor']}; undo that merge first"
        )
    now = now_utc()
    db.execute("DELETE FROM aliases WHERE mrn = ?", (merge.prior,))
    db.execute(
        "UPDATE patients SET status = 'active', merged_into = NULL, updated_at = ? WHERE mrn = ?", (now, merge.prior)
    )
    # MRNs merged into the prior one before lead to it again.
    earlier = [
        r["prior"]
        for r in db.execute(
            "SELECT prior FROM merges WHERE kind = 'merge' AND undone_by IS NULL AND survivor = ? AND id < ?",
            (merge.prior, merge.id),
        )
    ]
    for mrn in earlier:
        db.execute("UPDATE aliases SET survivor = ? WHERE mrn = ?", (merge.prior, mrn))
        db.execute("UPDATE patients SET merged_into = ? WHERE mrn = ?", (merge.prior, mrn))
    inserted = db.execute(
        "INSERT INTO merges (prior, survivor, control_id, requested_by, state, received_at, kind, undoes, reason) "
        "VALUES (?, ?, ?, ?, 'moving', ?, 'unmerge', ?, ?) RETURNING id",
        (merge.prior, merge.survivor, control_id, requested_by, now, merge.id, reason),
    )
    db.execute("UPDATE merges SET undone_by = ? WHERE id = ?", (inserted[0]["id"], merge.id))
    return _merge(db.execute("SELECT * FROM merges WHERE id = ?", (inserted[0]["id"],))[0])


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
        row["id"],
        row["prior"],
        row["survivor"],
        row["control_id"],
        row["requested_by"],
        row["state"],
        row["moved"],
        row["kind"],
        row["undoes"],
        row["undone_by"],
        row["reason"],
        row["received_at"],
    )


def _review(row: Row) -> Review:
    patient = (
        Patient(row["survivor"], row["family"], row["given"] or "", row["dob"], row["sex"])
        if row["family"] and row["dob"]
        else None
    )
    return Review(
        row["id"],
        row["kind"],
        row["prior"],
        row["survivor"],
        patient,
        row["control_id"],
        row["requested_by"],
        row["received_at"],
        row["held_because"],
        row["state"],
        row["decided_by"],
        row["decided_at"],
        row["decision_reason"],
        row["merge_id"],
    )


def _upsert(db: Transaction, patient: Patient, changed_by: str, source: str | None) -> Change:
    row = _first(db.execute("SELECT * FROM patients WHERE mrn = ?", (patient.mrn,)))
    if row is not None and row["status"] == "merged":
        raise PatientIndexError(
            f"MRN {patient.mrn} was merged into {row['merged_into']}; send updates for the surviving MRN"
        )
    family, given = patient.family.upper(), patient.given.upper()
    sex = patient.sex if patient.sex is not None else (row["sex"] if row is not None else None)
    if row is not None and (row["family"], row["given"], row["dob"], row["sex"]) == (family, given, patient.dob, sex):
        return "unchanged"
    now = now_utc()
    if row is not None:
        db.execute(
            "INSERT INTO patient_history (mrn, changed_at, changed_by, source, family, given, dob, sex, "
            "new_family, new_given, new_dob, new_sex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                patient.mrn,
                now,
                changed_by or "unknown",
                source,
                row["family"],
                row["given"],
                row["dob"],
                row["sex"],
                family,
                given,
                patient.dob,
                sex,
            ),
        )
    db.execute(
        "INSERT INTO patients (mrn, family, given, dob, sex, status, updated_at, last_key, first_key) "
        "VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?) "
        "ON CONFLICT (mrn) DO UPDATE SET family = excluded.family, given = excluded.given, dob = excluded.dob, "
        "sex = excluded.sex, updated_at = excluded.updated_at, last_key = excluded.last_key, first_key = excluded.first_key",
        (patient.mrn, family, given, patient.dob, sex, now, _last_key(family), _first_key(given)),
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
    return survivor, retired_note(mrn, survivor)


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
