"""The index's tables in PostgreSQL, versioned: INDEX_SCHEMA_VERSION and migrate().

All of it lives in the schema ``medarchive_index``:

- ``documents``: one row per document, the IndexRecord's fields and its site in columns
  (btree on MRN, type, date, status, site, source), its words in two tsvectors (vectors.py):
  ``terms`` under a GIN index for matching, ``head`` kept in the row for ranking;
- ``words``: every word of the text and of the names (n:word), for the budgets of
  wildcards and ranges and for expanding them (btree, text_pattern_ops);
- ``names``: the words of patients' names, a table of their own under a pg_trgm index, so
  that names one edit away are found without reading the documents;
- ``meta``: the schema version.

``migrate`` brings a database to INDEX_SCHEMA_VERSION (``medarchive db upgrade`` calls it);
opening an index creates the schema when it is absent and refuses one older or newer.
"""

from __future__ import annotations

import psycopg

from indexers.base import IndexFailure

INDEX_SCHEMA_VERSION = 1
SCHEMA = "medarchive_index"
_LOCK = 0x6D65_6469_6478  # pg_advisory_xact_lock key: one migration at a time

_DOCUMENT_COLUMNS = """
    doc_id text PRIMARY KEY,
    site text NOT NULL,
    status text NOT NULL,
    mrn text,
    patient_name text,
    dob text,
    doc_type text NOT NULL,
    doc_date text,
    pages integer NOT NULL,
    path text NOT NULL,
    sha256 text NOT NULL,
    source_sha256 text NOT NULL,
    source_file text NOT NULL,
    review_reason text,
    content text NOT NULL,
    head tsvector NOT NULL,
    terms tsvector NOT NULL
"""


def documents_table(name: str) -> list[str]:
    """The statements that create a documents table (and its indexes) under that name."""
    return [
        f"CREATE TABLE {SCHEMA}.{name} ({_DOCUMENT_COLUMNS})",
        # The ranking vector is small: keep it in the row, uncompressed, never in TOAST.
        f"ALTER TABLE {SCHEMA}.{name} ALTER COLUMN head SET STORAGE MAIN",
        *documents_indexes(name),
    ]


def documents_indexes(name: str) -> list[str]:
    return [
        f"CREATE INDEX ON {SCHEMA}.{name} USING gin (terms)",
        *(
            f"CREATE INDEX ON {SCHEMA}.{name} ({column})"
            for column in ("mrn", "doc_type", "doc_date", "status", "site", "source_sha256")
        ),
    ]


_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"CREATE TABLE {SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL)",
        *documents_table("documents"),
        f'CREATE TABLE {SCHEMA}.words (word text PRIMARY KEY COLLATE "C")',
        f"CREATE TABLE {SCHEMA}.names (word text PRIMARY KEY)",
        f"CREATE INDEX ON {SCHEMA}.names USING gin (word gin_trgm_ops)",
    ],
}


def version(conn: psycopg.Connection) -> int | None:
    """The index schema's version in this database; None when there is none."""
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.meta",)).fetchone()
    if not found or not found[0]:
        return None
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else None


def migrate(conn: psycopg.Connection) -> int:
    """Bring the index schema to INDEX_SCHEMA_VERSION, in one transaction; returns the version
    it was at (0 for none). Refuses a newer one."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        at = version(conn) or 0
        refuse_newer(at)
        for number in range(at + 1, INDEX_SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(number),),
            )
    return at


def refuse_newer(at: int) -> None:
    if at > INDEX_SCHEMA_VERSION:
        raise IndexFailure(
            f"the search index in the database is at schema version {at}, newer than this medarchive "
            f"knows ({INDEX_SCHEMA_VERSION}); upgrade medarchive on this machine"
        )


def check(conn: psycopg.Connection) -> None:
    """Create the schema when absent; refuse one older or newer than this code."""
    at = version(conn)
    if at is None:
        migrate(conn)
        return
    refuse_newer(at)
    if at < INDEX_SCHEMA_VERSION:
        raise IndexFailure(
            f"the search index in the database is at schema version {at}, older than this medarchive "
            f"needs ({INDEX_SCHEMA_VERSION}); run `medarchive db upgrade`"
        )
