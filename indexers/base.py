"""The index interface: what the pipeline, the CLI and the web need from a search engine.

The index is derived data: every record can be rebuilt from an archive sidecar.
This package stands on its own (it imports nothing of the pipeline): its
failures are IndexFailures, which the pipeline turns into its own errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# The site of a one-site deployment and of archives from before sites.
DEFAULT_SITE = "main"


class IndexFailure(Exception):
    """The index cannot do what was asked; the message says what to do about it."""


class IndexBusyError(IndexFailure):
    """Another process holds the index writer."""


class SearchTooBroad(IndexFailure):
    """A search past one of the budgets of IndexOptions (length, wildcards, time)."""


class IndexUnavailable(IndexFailure):
    """The index's server cannot be reached now; the same call may work later."""


class BadQuery(IndexFailure):
    """A search that cannot be read as typed (an unclosed phrase)."""


@dataclass(frozen=True)
class IndexOptions:
    """How an index is written, and how much one search may cost."""

    writer_timeout_seconds: float = 60
    limitmb: int = 256
    # Search budgets: one clerk's query must not hold a core for seconds.
    max_query_chars: int = 500
    min_wildcard_prefix: int = 2
    max_expansions: int = 300
    search_seconds: float = 5.0
    # Words that find a document type from a plain query, besides the words of
    # the type's own name: {"operative_report": ("op note", "surgery"), ...}.
    type_synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A plain word of the text this long or longer also finds words one edit away (an
    # OCR slip), ranked below the word itself; 0 turns it off.
    text_edit_min_letters: int = 6


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
    # The site that filed it (several sites share one PostgreSQL index; Whoosh keeps none).
    site: str = DEFAULT_SITE


@dataclass(frozen=True)
class SearchFilters:
    mrn: str | None = None
    doc_type: str | None = None
    status: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    site: str | None = None


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
    site: str = DEFAULT_SITE


class Index(ABC):
    """One writer at a time; any number of readers. Every method may raise an
    IndexFailure (IndexBusyError when another writer holds the index too long)."""

    # -- writing -------------------------------------------------------------

    @abstractmethod
    def add(self, records: Iterable[IndexRecord], merge: bool = True) -> int:
        """Add or replace records (keyed by doc_id) and commit once; return how
        many. merge=False leaves merging segments to a final optimize() (bulk loads)."""

    @abstractmethod
    def delete(self, doc_ids: Iterable[str]) -> int:
        """Remove records by doc_id and commit; return how many were removed."""

    @abstractmethod
    def optimize(self) -> None:
        """Merge what bulk loads (add(..., merge=False)) left apart."""

    def remnants(self) -> int:
        """How many deleted documents the index's files still hold, text and all
        (0 for an engine that removes them at once). A destroyed document must be
        gone from the index too: a delete leaves none behind when it returns."""
        return 0

    def expunge(self) -> None:
        """Remove what deleted documents left in the index's files (see remnants)."""
        return None

    @abstractmethod
    def rebuild(self, records: Iterable[IndexRecord], site: str | None = None) -> int:
        """Replace the whole index with these records; return how many. Given a site, only
        that site's records are replaced (an engine that keeps no sites refuses)."""

    # -- reading -------------------------------------------------------------

    @abstractmethod
    def search(self, query: str, filters: SearchFilters = SearchFilters(), limit: int = 20) -> list[SearchHit]:
        """Ranked hits for a query in the engine's syntax, narrowed by filters;
        an empty query lists what the filters allow, newest first. A query past
        the search budgets raises SearchTooBroad."""

    @abstractmethod
    def get(self, doc_id: str) -> IndexRecord | None:
        """One record as stored, by its doc_id (e.g. to find its archive path
        without scanning the archive); None when it is not indexed."""

    @abstractmethod
    def doc_ids_for_source(self, source_sha256: str) -> list[str]:
        """Documents already made from the input with these bytes."""

    @abstractmethod
    def stored(self, site: str | None = None) -> Iterator[IndexRecord]:
        """Every record as stored (content may be empty), for checks against the archive;
        given a site, that site's (an engine that keeps no sites gives them all)."""

    @abstractmethod
    def count(self) -> int:
        """How many documents the index holds (0 when there is none yet)."""

    @abstractmethod
    def warm(self) -> None:
        """Read ahead what the first searches would otherwise read on the way."""

    @abstractmethod
    def close(self) -> None:
        """Let go of open handles and what was read ahead."""
