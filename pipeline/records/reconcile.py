"""Bring the index back in line with the archive after a crash (the archive is the truth)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from indexers.base import Index
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import iter_sidecar_paths, record_from_sidecar
from pipeline.core.config import Config


@dataclass(frozen=True)
class Reconciled:
    added: int
    removed: int


def doc_id_of(sidecar: Path) -> str:
    return sidecar.stem.rsplit("_", 1)[-1]


def _newer(a: Path, b: Path) -> tuple[Path, Path]:
    """Of two sidecars of one document (a move cut short), the one the move wrote, and the other."""
    if len(read_sidecar(a).history) >= len(read_sidecar(b).history):
        return a, b
    return b, a


def _archived(config: Config) -> dict[str, Path]:
    """doc_id -> sidecar; a move interrupted after its copy is finished by removing the old pair."""
    found: dict[str, Path] = {}
    for path in iter_sidecar_paths(config):
        doc_id = doc_id_of(path)
        if doc_id in found:
            keep, drop = _newer(found[doc_id], path)
            drop.with_suffix(".pdf").unlink(missing_ok=True)
            drop.unlink()
            path = keep
        found[doc_id] = path
    return found


def reconcile_index(config: Config, index: Index) -> Reconciled:
    """Index what the archive has and the index lacks (or has elsewhere); drop what it no longer has."""
    archived = _archived(config)
    indexed = {r.doc_id: r.path for r in index.stored()}
    stale = [
        doc_id
        for doc_id, path in archived.items()
        if indexed.get(doc_id) != path.with_suffix(".pdf").relative_to(config.root).as_posix()
    ]
    if stale:
        index.add(record_from_sidecar(read_sidecar(archived[d])) for d in stale)
    gone = [doc_id for doc_id in indexed if doc_id not in archived]
    if gone:
        index.delete(gone)
    return Reconciled(len(stale), len(gone))
