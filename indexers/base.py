"""The index interface: what the pipeline and the CLI need from a search engine.

The index is derived data: every record can be rebuilt from an archive sidecar.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexRecord:
    """What is indexed for one archived document (built from its sidecar)."""

    doc_id: str
    status: str
    mrn: str | None
    patient_name: str | None
    dob: str | None
    doc_type: str
    doc_date: str | None
    pages: int
    path: str
    sha256: str
    source_sha256: str
    source_file: str
    review_reason: str | None
    content: str


@dataclass(frozen=True)
class SearchFilters:
    mrn: str | None = None
    doc_type: str | None = None
    status: str | None = None
    date_from: str | None = None
    date_to: str | None = None


@dataclass(frozen=True)
class SearchHit:
    doc_id: str
    mrn: str | None
    patient_name: str | None
    doc_type: str
    doc_date: str | None
    status: str
    score: float
    snippet: str
    path: str


class Index(ABC):
    """One writer at a time; any number of readers."""

    @abstractmethod
    def add(self, records: Iterable[IndexRecord]) -> int:
        """Add or replace records (keyed by doc_id) and commit; return how many."""

    @abstractmethod
    def delete(self, doc_ids: Iterable[str]) -> int:
        """Remove records by doc_id and commit; return how many were removed."""

    @abstractmethod
    def search(self, query: str, filters: SearchFilters = SearchFilters(), limit: int = 20) -> list[SearchHit]:
        """Ranked hits for a query in the engine's syntax, narrowed by filters."""

    @abstractmethod
    def get(self, doc_id: str) -> IndexRecord | None:
        """One record as stored, by its doc_id (e.g. to find its archive path
        without scanning the archive); None when it is not indexed."""

    @abstractmethod
    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        """Documents already made from the input with these bytes."""

    @abstractmethod
    def stored(self) -> Iterator[IndexRecord]:
        """Every record as stored (content may be empty), for checks against the archive."""

    @abstractmethod
    def rebuild(self, records: Iterable[IndexRecord]) -> int:
        """Replace the whole index with these records; return how many."""
