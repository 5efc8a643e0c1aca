"""Data directories on object storage: ``s3://bucket/prefix`` (also ``gs://``, ``az://``).

Why a separate place: a data directory is normally a local directory, and everything
beside a collection (its writer lock, its staging area of encoded pages, page crops) is a
local file. On object storage the collections themselves live in the bucket, in the same
layout as on disk (``<prefix>/collections/<name>/lancedb/pages.lance``), and the local
files go to a directory of the user's cache keyed by the URI (``ObjectStore.local_dir``).

What lives where, and what that guarantees:

- the pages table and its manifest (in the table's schema metadata): in the bucket,
  written by Lance. Every Lance commit writes its version manifest with a conditional
  put (``If-None-Match: *``), so a commit is atomic and two commits never overwrite each
  other: the loser of a race fails or retries on the new version.
- the writer lock and the staging area: local. So "one writer per collection" holds per
  machine only; two machines writing one collection at once are not stopped (each
  commit stays atomic, but both may encode the same files).

Credentials and endpoint: the usual environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, profiles, ...) or
explicit ``storage_options`` (Lance's keys: ``aws_endpoint``, ``aws_region``,
``allow_http``, ...). The same resolved options go to Lance and to the pyarrow
filesystem that lists and deletes collections, so both see the same bucket.
"""

from __future__ import annotations

__all__ = ["SCHEMES", "ObjectStore", "is_uri", "object_store"]

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RetrieverError, UsageError

#: URI schemes handed to Lance as they are (only s3 is tested here)
SCHEMES = ("s3", "gs", "az")
_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<bucket>[^/]*)(?P<prefix>/.*)?$")
_TRUE = {"true", "1", "yes", "on"}


def is_uri(value: object) -> bool:
    """True for a string naming an object-store location (``s3://``, ``gs://``, ``az://``)."""
    if not isinstance(value, str):
        return False
    match = _URI.match(value)
    return bool(match) and match.group("scheme") in SCHEMES


def _env_options(scheme: str) -> dict[str, str]:
    """Settings from the environment that Lance's and pyarrow's S3 clients do not both
    read by themselves (an endpoint set with ``AWS_ENDPOINT_URL`` in particular)."""
    if scheme != "s3":
        return {}
    out: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        out["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            out["allow_http"] = "true"  # Lance refuses plain http unless told
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        out["aws_region"] = region
    return out


@dataclass(frozen=True)
class ObjectStore:
    """A data directory on object storage: its URI and the options to reach it."""

    uri: str  # "s3://bucket/prefix", no trailing slash
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    def join(self, *parts: str) -> str:
        return "/".join([self.uri, *(p.strip("/") for p in parts)])

    def collection_uri(self, name: str) -> str:
        from .config import validate_collection_name

        return self.join("collections", validate_collection_name(name))

    @property
    def local_dir(self) -> Path:
        """Local files of this data directory (locks, staging, crops): the user's cache
        directory, one folder per URI (a readable part and a hash, so two prefixes that
        read alike never share one)."""
        from .config import cache_dir

        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.uri.split("://", 1)[1])[:60]
        return cache_dir() / "object-store" / f"{self.scheme}-{readable}-{digest}"

    def local_path(self, uri: str) -> Path:
        """The local mirror of a location under this data directory."""
        if uri != self.uri and not uri.startswith(self.uri + "/"):
            raise RetrieverError(f"{uri} is not under {self.uri}")
        rest = uri[len(self.uri):].strip("/")
        return self.local_dir / rest if rest else self.local_dir

    # -- collections ------------------------------------------------------------------

    def collections(self) -> list[str]:
        """Names of the collections under ``<uri>/collections``."""
        from .config import validate_collection_name

        names = []
        for name in self.children(self.join("collections")):
            try:
                names.append(validate_collection_name(name))
            except UsageError:  # not one of ours (a name we would never write)
                continue
        return names

    def backend_of(self, name: str) -> str | None:
        """The backend holding collection ``name`` (its sub-prefix has objects), or None.
        Only backends that can live on object storage are looked for."""
        from .plugin_host import get_registry

        registry = get_registry()
        uri = self.collection_uri(name)
        for backend in registry.names("indexer"):
            spec = registry.get("indexer", backend)
            if getattr(spec, "object_storage", False) and self.exists(f"{uri}/{backend}"):
                return backend
        return None

    def check_backend(self, backend: str) -> None:
        """A backend that keeps local files only (FAISS, memory) refuses a URI at once."""
        from .plugin_host import get_registry

        if not getattr(get_registry().get("indexer", backend), "object_storage", False):
            raise UsageError(f"the {backend} backend keeps collections in a local "
                             f"directory, not on object storage ({self.uri})",
                             hint="use --indexer lancedb for s3:// (gs://, az://) data "
                                  f"directories, or a local --data-dir for {backend}")

    def delete_collection(self, name: str) -> None:
        """Delete collection ``name`` under its (local) writer lock, and its local files."""
        import shutil

        from .errors import CollectionNotFoundError
        from .locking import writer_lock

        uri = self.collection_uri(name)
        if not self.exists(uri):
            raise CollectionNotFoundError(f"no collection named {name!r} in {self.uri}")
        with writer_lock(self.local_dir, name, "delete_collection"):
            # object by object: not atomic; a failure leaves some, running it again goes on
            self.delete_tree(uri)
            shutil.rmtree(self.local_path(uri), ignore_errors=True)  # its staging

    # -- listing and deleting, through pyarrow's filesystem for the same bucket --------

    def _filesystem(self) -> Any:
        """The pyarrow filesystem of this data directory's bucket, built from the same
        options Lance gets (so listing and deleting see what Lance wrote)."""
        try:
            import pyarrow.fs as pafs
        except ImportError as exc:  # pragma: no cover - comes with the lancedb extra
            raise UsageError("collections on object storage need pyarrow",
                             hint="pip install 'vision-retriever[lancedb]'") from exc
        opts = {k.lower(): str(v) for k, v in self.options.items()}
        if self.scheme == "s3":
            endpoint = opts.get("aws_endpoint") or opts.get("endpoint")
            kwargs: dict[str, Any] = {"allow_bucket_creation": False,
                                      "allow_bucket_deletion": False}
            if endpoint:
                scheme, _, host = endpoint.partition("://")
                kwargs["endpoint_override"] = host or scheme
                # no scheme given ("host:port"): plain http only when allowed, as in Lance
                plain = opts.get("allow_http", "").lower() in _TRUE
                kwargs["scheme"] = scheme if host else ("http" if plain else "https")
            key = opts.get("aws_access_key_id") or opts.get("access_key_id")
            secret = opts.get("aws_secret_access_key") or opts.get("secret_access_key")
            if key and secret:
                kwargs.update(access_key=key, secret_key=secret,
                              session_token=opts.get("aws_session_token"))
            region = opts.get("aws_region") or opts.get("region")
            if region:
                kwargs["region"] = region
            return pafs.S3FileSystem(**kwargs)
        if self.scheme == "gs":  # untested: credentials from the environment
            return pafs.GcsFileSystem()
        # az://container/prefix; the account as Lance takes it (untested)
        account = (opts.get("azure_storage_account_name") or opts.get("account_name")
                   or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME"))
        if not account:
            raise UsageError("az:// needs the storage account",
                             hint="set AZURE_STORAGE_ACCOUNT_NAME or --storage-option "
                                  "azure_storage_account_name=NAME")
        return pafs.AzureFileSystem(account_name=account)

    def _path_of(self, uri: str) -> str:
        return uri.split("://", 1)[1]

    def _fail(self, what: str, exc: Exception) -> RetrieverError:
        return RetrieverError(f"{what} on {self.uri} failed: {exc}",
                              hint="check the bucket, the credentials (AWS_* variables or "
                                   "--storage-option) and the endpoint")

    def children(self, uri: str) -> list[str]:
        """Names of the 'directories' (common prefixes) directly under ``uri``."""
        import pyarrow.fs as pafs

        fs = self._filesystem()
        try:
            infos = fs.get_file_info(pafs.FileSelector(self._path_of(uri),
                                                       allow_not_found=True))
        except OSError as exc:
            raise self._fail("listing", exc) from exc
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def exists(self, uri: str) -> bool:
        """Whether any object lies under ``uri``."""
        import pyarrow.fs as pafs

        fs = self._filesystem()
        try:
            info = fs.get_file_info(self._path_of(uri))
        except OSError as exc:
            raise self._fail("reading", exc) from exc
        return info.type != pafs.FileType.NotFound

    def delete_tree(self, uri: str) -> None:
        """Delete every object under ``uri`` (not atomic: a failure leaves some). pyarrow
        may leave an empty marker object for the parent 'directory'; it lists as nothing."""
        fs = self._filesystem()
        try:
            fs.delete_dir(self._path_of(uri))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail("deleting", exc) from exc

    def size(self, uri: str) -> int:
        """Bytes of every object under ``uri``."""
        import pyarrow.fs as pafs

        fs = self._filesystem()
        try:
            infos = fs.get_file_info(pafs.FileSelector(self._path_of(uri), recursive=True,
                                                       allow_not_found=True))
        except OSError as exc:
            raise self._fail("listing", exc) from exc
        return sum(int(i.size or 0) for i in infos if i.type == pafs.FileType.File)


def object_store(data_dir: str | os.PathLike[str] | None,
                 storage_options: Mapping[str, Any] | None = None) -> ObjectStore | None:
    """The object store named by ``data_dir`` (else ``$RETRIEVER_HOME``); None when the
    data directory is local. ``storage_options`` given without a URI is a UsageError:
    they would silently do nothing."""
    from .config import HOME_ENV

    where = os.fspath(data_dir) if data_dir else os.environ.get(HOME_ENV)
    match = _URI.match(where or "")
    if match is None or match.group("scheme") not in SCHEMES:  # a local directory
        if match:  # "http://..." or "file://...": not a directory, not ours either
            raise UsageError(f"unsupported data directory URI {where!r}",
                             hint=f"use a local directory or one of "
                                  f"{', '.join(s + '://' for s in SCHEMES)}")
        if storage_options:
            raise UsageError("storage options apply to a data directory on object "
                             "storage only", hint="give --data-dir s3://BUCKET/PREFIX, or "
                                                  "drop --storage-option")
        return None
    if not match.group("bucket"):
        raise UsageError(f"data directory {where!r} names no bucket",
                         hint="e.g. s3://my-bucket/retriever")
    options = {**_env_options(match.group("scheme")),
               **{str(k): str(v) for k, v in (storage_options or {}).items()}}
    for key in ("allow_http",):  # normalise booleans the CLI gives as words
        if key in options:
            options[key] = "true" if options[key].strip().lower() in _TRUE else "false"
    return ObjectStore(where.rstrip("/"), options)
