"""Reaching Ray: one import with a clear error, and one way to join or start a cluster,
shared by distributed indexing, sharded search and ``serve --ray``."""

from __future__ import annotations

__all__ = ["import_ray", "join_ray"]

import logging
import warnings
from typing import Any

from ..errors import MissingDependencyError


def import_ray(purpose: str = "sharded search runs on Ray", *, data: bool = False) -> Any:
    """Ray (with Ray Data when ``data``), or a MissingDependencyError saying ``purpose``."""
    try:
        import ray

        if data:
            import ray.data  # noqa: F401 - needs pandas, which ray's core does not install
    except ImportError as exc:
        raise MissingDependencyError(purpose,
                                     hint="pip install 'vision-retriever[ray]'") from exc
    return ray


def join_ray(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address`` (None: a new local one) unless this process is on
    one already; -> whether this call started it (and its caller must shut it down)."""
    if ray.is_initialized():
        return False
    with warnings.catch_warnings():
        # lancedb warns at every fork; Ray's fork is followed by an exec of its own process
        warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    return True
