"""Pages OCRed on a Dask cluster, through the same Executor interface as the local pool.

Only the page work travels: the coordinator keeps the journal, the archive and the
index. Workers need the medarchive package and tesseract, nothing of the data root.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from pipeline.core.errors import MedarchiveError


class ClusterError(MedarchiveError):
    pass


def cluster_executor(address: str, connect_seconds: float = 30) -> tuple[Executor, int, Callable[[], None]]:
    """An executor on the scheduler at ``address``, its worker threads, and how to disconnect."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("Dask is not installed here: pip install 'medarchive[cluster]'") from None
    try:
        client = Client(address, timeout=connect_seconds)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({exc}); is `dask scheduler` running there?"
        ) from None
    threads = sum(client.nthreads().values())
    if not threads:
        client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no workers; start some with `dask worker {address}`")
    # pure=False: two pages with equal bytes are still two pages to read.
    return client.get_executor(pure=False), threads, client.close
