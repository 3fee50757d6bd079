"""Exceptions whose message a clerk or an administrator can act on."""


class MedarchiveError(Exception):
    """Base of every expected failure; the CLI prints its message on one line."""


class ConfigError(MedarchiveError):
    """The configuration file is missing, unreadable or has a bad key."""


class IntakeError(MedarchiveError):
    """An input cannot be taken into the archive (the message is the reason)."""


class ArchiveError(MedarchiveError):
    """The archive cannot be read or written as asked."""


class SearchIndexError(MedarchiveError):
    """The search index failed or refused (an indexers IndexFailure, as the
    pipeline raises it: see pipeline.archive.index)."""


class IndexBusyError(SearchIndexError):
    """Another process holds the index writer."""


class SearchTooBroadError(SearchIndexError):
    """A search past the search budgets (index settings)."""
