"""The archive's search index, opened as the configuration says."""

from __future__ import annotations

from indexers.whoosh.facade import WhooshIndex
from pipeline.core.config import Config


def open_index(config: Config) -> WhooshIndex:
    return WhooshIndex(config.index_dir, config.index)
