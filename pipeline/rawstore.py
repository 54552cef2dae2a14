"""Content-addressed, append-only store of raw page bodies.

Layout: ``<root>/<source>/objects/<sha[:2]>/<sha>.html.gz`` -- one gzip file per
distinct body, named by the sha256 of the *uncompressed* bytes.  Consequences:

* a page version is stored once however often it is fetched, and an existing
  object is never rewritten or deleted (same name = same bytes);
* names come from the hash and a validated source name, never from URL text,
  so nothing a site serves can steer a write outside the root;
* readers verify the hash, so a damaged file is a clear `CorruptObjectError`
  instead of silently wrong data.

Writes are atomic: a temp file in the same directory, fsync, ``os.replace``,
fsync of the directory.  A process killed mid-write leaves at most a temp file
(never a partial object), which `sweep_temp` removes once its writer is dead.

gzip (stdlib) rather than zstd: no extra dependency, every tool can open the
files, and HTML compresses ~5-8x either way; the store is write-once so zstd's
speed advantage buys little.  ``mtime=0`` keeps the compressed bytes
deterministic.

The root may be a local path or an fsspec URL (``memory://...``, ``s3://...``);
non-local filesystems write each object in one put, which object stores apply
atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import secrets
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.faults import checkpoint, describe_os_error

_SOURCE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".html.gz"
_TEMP_SUFFIX = ".tmp"
DEFAULT_MAX_OBJECT_BYTES = 256 * 1024 * 1024  # decompression cap when reading back


class RawStoreError(Exception):
    pass


class CorruptObjectError(RawStoreError):
    """An object's bytes no longer hash to its name (or are not valid gzip)."""


class MissingObjectError(RawStoreError, FileNotFoundError):
    pass


class UnreadableObjectError(RawStoreError):
    """The object exists but cannot be read (permissions, not a file, I/O error)."""


class RawStoreWriteError(RawStoreError, OSError):
    """The store takes no writes (disk full, permission denied...): the crawl must stop,
    since every further page would fail the same way.  str() is one line."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    source: str
    sha256: str
    path: str  # local path or fsspec URL of the object
    size: int  # uncompressed bytes
    created: bool  # False when the object was already there (dedup)


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _check_source(source: str) -> str:
    if not _SOURCE_RE.fullmatch(source):
        raise ValueError(f"invalid source name for raw store: {source!r}")
    return source


def _check_sha(sha: str) -> str:
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"not a sha256 hex digest: {sha!r}")
    return sha


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RawStore:
    def __init__(self, root: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None):
        text = os.fspath(root)
        self.root = text
        self._fs: Any = None  # fsspec filesystem for non-local roots
        if "://" in text and not text.startswith("file://"):
            import fsspec  # only needed for remote/memory roots

            self._fs, self._base = fsspec.core.url_to_fs(text, **(storage_options or {}))
            self._base = self._base.rstrip("/")
        else:
            local = text[len("file://") :] if text.startswith("file://") else text
            self._base = str(Path(local).resolve())

    @property
    def is_local(self) -> bool:
        return self._fs is None

    # -- paths -----------------------------------------------------------------
    def _rel(self, source: str, sha: str) -> str:
        return f"{_check_source(source)}/objects/{_check_sha(sha)[:2]}/{sha}{_SUFFIX}"

    def _full(self, rel: str) -> str:
        return f"{self._base}/{rel}"

    def path_for(self, source: str, sha: str) -> str:
        """Where the object for `sha` lives (local path, or fsspec URL for remote roots)."""
        rel = self._rel(source, sha)
        return self._full(rel) if self.is_local else f"{self.root.rstrip('/')}/{rel}"

    # -- write -----------------------------------------------------------------
    def put(self, source: str, content: bytes) -> StoredObject:
        sha = sha256_hex(content)
        rel = self._rel(source, sha)
        full = self._full(rel)
        if self._exists(full):
            return StoredObject(source, sha, self.path_for(source, sha), len(content), created=False)
        data = gzip.compress(content, compresslevel=6, mtime=0)
        if self.is_local:
            try:
                self._write_local_atomic(full, data)
            except OSError as exc:
                raise RawStoreWriteError(describe_os_error(exc, f"raw store object {full}")) from exc
        else:
            self._fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
            self._fs.pipe_file(full, data)
        return StoredObject(source, sha, self.path_for(source, sha), len(content), created=True)

    def _write_local_atomic(self, full: str, data: bytes) -> None:
        directory, name = os.path.split(full)
        os.makedirs(directory, exist_ok=True)
        # pid in the temp name lets sweep_temp tell a dead writer's leftovers from a live one's.
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            checkpoint("rawstore.temp_written", full)
            # os.replace would overwrite; content addressing makes a concurrent winner
            # byte-identical, so losing that race is harmless.
            os.replace(tmp, full)
            checkpoint("rawstore.renamed", full)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- read ------------------------------------------------------------------
    def _exists(self, full: str) -> bool:
        return os.path.exists(full) if self.is_local else bool(self._fs.exists(full))

    def exists(self, source: str, sha: str) -> bool:
        return self._exists(self._full(self._rel(source, sha)))

    def get(self, source: str, sha: str, *, max_bytes: int = DEFAULT_MAX_OBJECT_BYTES) -> bytes:
        """The original bytes of object `sha`, verified against its hash."""
        full = self._full(self._rel(source, sha))
        try:
            if self.is_local:
                with open(full, "rb") as fh:
                    data = fh.read()
            else:
                data = self._fs.cat_file(full)
        except FileNotFoundError:
            raise MissingObjectError(f"raw object {sha} of {source!r} not found at {full}") from None
        except OSError as exc:  # permissions, a directory in the file's place, I/O errors
            raise UnreadableObjectError(f"raw object {full} is unreadable: {exc.strerror or exc}") from None
        try:
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            content = dec.decompress(data, max_bytes + 1)
            if len(content) > max_bytes:
                raise CorruptObjectError(f"raw object {full} inflates beyond {max_bytes} bytes")
            if not dec.eof:
                raise CorruptObjectError(f"raw object {full} is a truncated gzip stream")
        except zlib.error as exc:
            raise CorruptObjectError(f"raw object {full} is not valid gzip: {exc}") from None
        actual = sha256_hex(content)
        if actual != sha:
            raise CorruptObjectError(f"raw object {full} is corrupt: content hashes to {actual}, expected {sha}")
        return content

    def iter_shas(self, source: str) -> Iterator[str]:
        """Every stored object of `source`, sorted (temp files excluded)."""
        base = self._full(f"{_check_source(source)}/objects")
        if self.is_local:
            if not os.path.isdir(base):
                return
            names = [n for _, _, files in os.walk(base) for n in files]
        else:
            if not self._fs.exists(base):
                return
            names = [p.rsplit("/", 1)[-1] for p in self._fs.find(base)]
        for name in sorted(names):
            if name.endswith(_SUFFIX) and _SHA_RE.fullmatch(name[: -len(_SUFFIX)]):
                yield name[: -len(_SUFFIX)]

    def quarantine(self, source: str, sha: str) -> str | None:
        """Move a damaged object to ``<root>/<source>/quarantine/`` (kept, never deleted), so
        the name is free for a good copy: the next crawl refetches the page and stores it again.
        Returns where it went (None: nothing there, or a non-local store)."""
        if not self.is_local:
            return None
        full = self._full(self._rel(source, sha))
        if not os.path.lexists(full):
            return None
        directory = self._full(f"{_check_source(source)}/quarantine")
        os.makedirs(directory, exist_ok=True)
        target = os.path.join(directory, f"{sha}.{int(time.time())}.{secrets.token_hex(2)}{_SUFFIX}")
        os.replace(full, target)
        return target

    # -- housekeeping ----------------------------------------------------------
    def sweep_temp(self, source: str, *, stale_after_s: float = 3600.0) -> int:
        """Remove temp files left by writers that died (kill -9) before their rename.

        A temp file is removed when its writer's pid is gone, or it is older than
        `stale_after_s` (pid reused / written from another machine).  Returns the count.
        """
        if not self.is_local:
            return 0
        base = self._full(f"{_check_source(source)}/objects")
        if not os.path.isdir(base):
            return 0
        removed = 0
        now = time.time()
        for directory, _, files in os.walk(base):
            for name in files:
                if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
                    continue
                path = os.path.join(directory, name)
                parts = name.split(".")
                pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else -1
                try:
                    old = now - os.path.getmtime(path) > stale_after_s
                except FileNotFoundError:
                    continue
                if pid == os.getpid() and not old:
                    continue
                if pid < 0 or old or not _pid_alive(pid):
                    try:
                        os.unlink(path)
                        removed += 1
                    except FileNotFoundError:
                        pass
        return removed
