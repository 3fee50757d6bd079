"""The boxes store: each box's state, where it is, and its history (who closed, shipped, recalled, destroyed it).

Which documents a box holds is not here: each document's sidecar says (``Sidecar.paper``),
so the archive stays the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.clock import now_utc
from pipeline.paper.rules import State
from pipeline.stores import Migration, Row, Schema, SchemaStore

SCHEMA = Schema(
    "boxes",
    (
        Migration(
            1,
            """
CREATE TABLE boxes (
    box TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'shipped', 'recalled', 'destroyed')),
    vendor TEXT,
    since TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE box_events (
    id INTEGER PRIMARY KEY,
    box TEXT NOT NULL,
    at TEXT NOT NULL,
    by_user TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX box_events_by_box ON box_events (box, id);
""",
        ),
    ),
)


@dataclass(frozen=True)
class Box:
    box: str
    state: State = "open"
    vendor: str | None = None
    since: str | None = None  # when it reached its state (at the vendor since …)
    updated_at: str | None = None


@dataclass(frozen=True)
class BoxEvent:
    at: str
    by: str
    action: str
    detail: str | None


class BoxStore(SchemaStore):
    SCHEMA = SCHEMA

    def get(self, box: str) -> Box | None:
        rows = self.db.query("SELECT * FROM boxes WHERE box = ?", (box,))
        return _box(rows[0]) if rows else None

    def all(self) -> list[Box]:
        return [_box(r) for r in self.db.query("SELECT * FROM boxes ORDER BY box")]

    def events(self, box: str) -> list[BoxEvent]:
        rows = self.db.query("SELECT at, by_user, action, detail FROM box_events WHERE box = ? ORDER BY id", (box,))
        return [BoxEvent(r["at"], r["by_user"], r["action"], r["detail"]) for r in rows]

    def change(
        self, box: str, state: State, *, user: str, action: str, detail: str | None = None, vendor: str | None = None
    ) -> Box:
        """Move the box to ``state`` and record why, in one transaction."""
        now = now_utc()
        with self.db.transaction() as tx:
            tx.lock(f"boxes:{box}")  # sites sharing the database change one box one at a time
            rows = tx.execute("SELECT * FROM boxes WHERE box = ?", (box,))
            old = _box(rows[0]) if rows else Box(box)
            kept_vendor = vendor if vendor is not None else old.vendor
            tx.execute(
                "INSERT INTO boxes (box, state, vendor, since, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (box) DO UPDATE SET state = excluded.state, vendor = excluded.vendor, "
                "since = excluded.since, updated_at = excluded.updated_at",
                (box, state, kept_vendor, now if state != old.state or not rows else old.since, now),
            )
            tx.execute(
                "INSERT INTO box_events (box, at, by_user, action, detail) VALUES (?, ?, ?, ?, ?)",
                (box, now, user, action, detail),
            )
        return Box(box, state, kept_vendor, now if state != old.state or not rows else old.since, now)


def _box(row: Row) -> Box:
    return Box(row["box"], row["state"], row["vendor"], row["since"], row["updated_at"])
