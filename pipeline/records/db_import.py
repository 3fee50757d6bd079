"""`medarchive db import`: move an embedded deployment's stores into the shared database.

Every step can be repeated: rows already there are kept (their keys decide), a table whose
rows are all there is passed over, and the audit chains are continued from the entry the
database already has, entry for entry (their hashes unchanged, so the chain that was
verified in the file is the chain verified in the database). Stopped at any point, the
same command picks up where it was. The index is rebuilt from the sidecars last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.archive.audit import SCHEMA as AUDIT_SCHEMA
from pipeline.archive.audit import ChainCheck, ChainedLog, DatabaseChainedLog, audit_dir
from pipeline.core.config import Config
from pipeline.stores.base import Database, Schema, StoreError
from pipeline.stores.opening import open_store
from pipeline.stores.sqlite_backend import SqliteDatabase

Progress = Callable[[str], None]
_BATCH = 1000
CHAINS = ("audit", "destruction")


class ImportRefused(StoreError):
    """The embedded deployment cannot be moved as it is (the message says what to fix first)."""


@dataclass
class ImportReport:
    rows: dict[str, int]  # "store.table" -> rows copied now
    chains: dict[str, ChainCheck]  # the chain as verified in the database afterwards
    documents: int | None  # records the rebuilt index holds (None when not rebuilt)


def import_embedded(
    config: Config,
    schemas: Sequence[Schema],
    *,
    source_root: Path | None = None,
    rebuild_index: Callable[[], int] | None = None,
    progress: Progress = lambda line: None,
) -> ImportReport:
    """Copy every store under ``source_root`` (default: the data root) into the database."""
    if config.database.url is None:
        raise ImportRefused("database.url is not set: there is no shared database to import into")
    root = source_root or config.root
    files = {chain: ChainedLog(root / audit_dir(config).name / f"{chain}.jsonl") for chain in CHAINS}
    for chain, log in files.items():
        _verified(log.verify(), f"the {chain} log {log.path}", progress)
    copied: dict[str, int] = {}
    for schema in schemas:
        path = root / schema.sqlite_file
        if not path.exists():
            progress(f"{schema.name}: no {schema.sqlite_file} under {root}; nothing to import")
            continue
        source = SqliteDatabase(path, schema)
        try:
            target = open_store(config, schema)
            copied.update(_copy_store(source, target, schema.name, progress))
        finally:
            source.close()
    audit_db = open_store(config, AUDIT_SCHEMA)
    chains = {chain: _copy_chain(files[chain], DatabaseChainedLog(audit_db, chain), progress) for chain in CHAINS}
    documents = None
    if rebuild_index is not None:
        progress("index: rebuilding from the sidecars")
        documents = rebuild_index()
        progress(f"index: {documents} document(s)")
    return ImportReport(copied, chains, documents)


def _verified(check: ChainCheck, what: str, progress: Progress) -> None:
    if not check.ok:
        raise ImportRefused(
            f"{what} is broken at entry {check.line} ({check.problem}); restore it from a backup before importing"
        )
    progress(f"{what}: {check.entries} entries, chain intact")


def _tables(source: SqliteDatabase) -> list[str]:
    rows = source.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    )
    return [row["name"] for row in rows]


def _columns(source: SqliteDatabase, target: Database, table: str) -> list[str]:
    names = [row["name"] for row in source.query(f"PRAGMA table_info({table})")]
    # A rowid the SQLite statements use is a column of its own on PostgreSQL: carry it over.
    wanted = target.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    )
    if "rowid" in {row["column_name"] for row in wanted} and "rowid" not in names:
        names.insert(0, "rowid")
    return names


def _count(db: Database, table: str) -> int:
    return int(db.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])


def _copy_store(source: SqliteDatabase, target: Database, store: str, progress: Progress) -> dict[str, int]:
    copied = {}
    for table in _tables(source):
        total, there = _count(source, table), _count(target, table)
        key = f"{store}.{table}"
        if there >= total:
            progress(f"{key}: {total} row(s), already in the database")
            copied[key] = 0
            continue
        columns = _columns(source, target, table)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        done = added = 0
        for batch in _batches(source, table, columns):
            with target.transaction() as tx:
                for row in batch:
                    tx.execute(insert, row)
                    added += tx.rowcount()
            done += len(batch)
            progress(f"{key}: {done}/{total}")
        _continue_identity(target, table)
        copied[key] = added
    return copied


def _batches(source: SqliteDatabase, table: str, columns: list[str]) -> Iterator[list[tuple]]:
    select = f"SELECT {', '.join(columns)} FROM {table}"
    offset = 0
    while rows := source.query(f"{select} ORDER BY {columns[0]} LIMIT ? OFFSET ?", (_BATCH, offset)):
        yield [tuple(row) for row in rows]
        offset += len(rows)


def _continue_identity(target: Database, table: str) -> None:
    """Ids were copied as they were: the next one made here must follow them."""
    identities = target.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? AND is_identity = 'YES'",
        (table,),
    )
    for row in identities:
        column = row["column_name"]
        with target.transaction() as tx:
            tx.execute(
                f"SELECT setval(pg_get_serial_sequence(current_schema() || '.' || ?, ?), "
                f"(SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)",
                (table, column),
            )


def _copy_chain(source: ChainedLog, target: DatabaseChainedLog, progress: Progress) -> ChainCheck:
    """Continue the database's chain with the file's entries after the ones it has, unchanged.
    The database's chain may already go on past the file's end (the import's own entry)."""
    have, mine = target.verify(), source.verify()
    if not have.ok:
        raise ImportRefused(f"the database's {target.chain} chain is broken at entry {have.line} ({have.problem})")
    overlap = min(have.entries, mine.entries)
    if overlap and target.hash_at(overlap) != next(e["hash"] for e in source.entries() if e["seq"] == overlap):
        raise ImportRefused(
            f"the database's {target.chain} chain is not the one in {source.path} (entry {overlap} differs): "
            "it was written before this import; import into an empty database"
        )
    added = 0
    for entry in source.entries():
        if entry["seq"] > have.entries:
            target.append_sealed(entry)
            added += 1
            if added % _BATCH == 0:
                progress(f"{target.chain} chain: {added} entries copied")
    after = target.verify()
    if not after.ok:
        raise ImportRefused(f"the {target.chain} chain does not verify in the database: {after.problem}")
    if mine.entries and target.hash_at(mine.entries) != mine.head:
        raise ImportRefused(f"the {target.chain} chain in the database does not hold the file's entry {mine.entries}")
    progress(f"{target.chain} chain: {after.entries} entries in the database, head {after.head}")
    return after
