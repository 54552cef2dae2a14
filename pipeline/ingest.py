"""Read saved pages from disk into RawPage records.

Reading never judges content: an empty, binary or huge file still becomes a
RawPage (truncated to `max_bytes`) so the parse stage can reject it with a
reason and the warehouse keeps a row for it.  Only files that cannot be read at
all come back as `UnreadableFile`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.models import RawPage

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
PAGE_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".txt", ".text", ""})


@dataclass(frozen=True, slots=True)
class UnreadableFile:
    url: str
    error: str


def page_id_for(url: str, content_sha256: str) -> str:
    """Stable id of one page version: the same bytes at the same URL are one page."""
    return hashlib.sha256(f"{url}\0{content_sha256}".encode()).hexdigest()[:24]


def raw_page_from_bytes(
    url: str, content: bytes, fetched_at: dt.datetime, source_hint: str | None = None
) -> RawPage:
    return RawPage(
        url=url,
        content=content,
        fetched_at=fetched_at,
        content_sha256=hashlib.sha256(content).hexdigest(),
        source_hint=source_hint,  # type: ignore[arg-type]
    )


def iter_page_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files under `paths` in a stable order, recursing into directories, skipping dotfiles."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in rel.parts):
                    if child.suffix.lower() in PAGE_SUFFIXES or child.suffix.lower() == ".gz":
                        yield child
        else:
            yield path


def read_page_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> RawPage | UnreadableFile:
    url = path.resolve().as_uri()
    try:
        with path.open("rb") as fh:
            content = fh.read(max_bytes + 1)
        mtime = path.stat().st_mtime
    except OSError as exc:
        return UnreadableFile(url=url, error=f"cannot read file: {exc.strerror or exc}")
    fetched_at = dt.datetime.fromtimestamp(int(mtime), tz=dt.timezone.utc).replace(tzinfo=None)
    return raw_page_from_bytes(url, content, fetched_at)


def read_pages(
    paths: Iterable[str | os.PathLike[str]], max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[RawPage | UnreadableFile]:
    for path in iter_page_files(paths):
        yield read_page_file(path, max_bytes)
