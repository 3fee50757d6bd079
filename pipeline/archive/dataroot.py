"""The data root: created private, refused when others could write into it."""

from __future__ import annotations

import stat
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.errors import ConfigError
from pipeline.core.fsutil import ensure_dir


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path} can be written by other users (mode {stat.filemode(mode)}); the index is loaded with "
            f"pickle, so this would let them run code here. Fix it with: chmod -R go-w,go-rx {path}"
        )


def open_data_root(config: Config) -> Path:
    """Create the data root's folders (0700) and check that nobody else can write there."""
    root = config.root
    if root.exists():
        _check_private(root)
    for folder in (root, config.archive_dir, config.review_dir, config.failed_dir, config.index_dir):
        ensure_dir(folder)
        _check_private(folder)
    return root
