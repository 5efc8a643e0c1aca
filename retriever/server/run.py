"""``serve``: check the bind and the key, build the app, run uvicorn."""

from __future__ import annotations

__all__ = ["serve", "require_server_extra"]

import os
from typing import Any

from ..errors import MissingDependencyError
from .auth import check_bind, key_from_env


def require_server_extra() -> None:
    missing = []
    for module in ("fastapi", "uvicorn", "prometheus_client", "multipart"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingDependencyError(
            f"the HTTP server needs {', '.join(missing)}",
            hint="pip install 'vision-retriever[server]'")


def serve(host: str = "127.0.0.1", port: int = 8765, *, api_key_env: str | None = None,
          data_dir: str | os.PathLike[str] | None = None, log_level: str = "info",
          ray: bool = False, ray_address: str | None = None, **app_options: Any) -> None:
    """Run the server until interrupted. A non-loopback ``host`` without a key, or a key
    variable that is unset, is a ``UsageError`` (exit 2) before anything starts.
    ``ray``: sharded collections are searched by Ray actors, on the cluster at
    ``ray_address`` (default: a new local one)."""
    api_key = key_from_env(api_key_env)
    check_bind(host, api_key)
    require_server_extra()
    import uvicorn

    from .app import create_app

    cluster = None
    if ray or ray_address:  # joined before the first request, so that none pays for it
        from ..distributed.cluster import import_ray, join_ray

        cluster = import_ray("serve --ray searches shards on Ray")
        if not join_ray(cluster, ray_address):
            cluster = None  # a cluster this process did not start is not ours to stop
    try:
        app = create_app(data_dir, api_key=api_key, ray=bool(ray or ray_address),
                         **app_options)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        if cluster is not None:
            cluster.shutdown()
