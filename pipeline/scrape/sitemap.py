"""Safe sitemap parsing: sitemap indexes, urlsets, plain-text lists, gzip.

Sitemaps are untrusted input from the network, so the parser
* never resolves entities or loads DTDs/network resources (no XXE, no
  billion-laughs expansion), refuses lxml's huge-tree mode, and
* caps bytes both before and after gunzip, and the number of entries,
* streams with iterparse and clears elements as it goes (flat memory).
A malformed document yields whatever entries preceded the error plus the error.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from dataclasses import dataclass
from typing import Literal

from lxml import etree

MAX_ENTRIES = 50_000  # sitemaps.org per-file limit


class TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    loc: str
    lastmod: dt.datetime | None = None  # naive UTC; date-only values mean end of that day


@dataclass(frozen=True, slots=True)
class ParsedSitemap:
    kind: Literal["index", "urlset", "text", "unknown"]
    entries: tuple[SitemapEntry, ...]
    error: str | None = None


def gunzip_capped(data: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip body, refusing to produce more than `max_bytes` (zip-bomb guard)."""
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = dec.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"bad gzip data: {exc}") from None
    if len(out) > max_bytes:
        raise TooLarge(f"gzip content exceeds {max_bytes} bytes")
    if not dec.eof:
        raise ValueError("truncated gzip data")
    return out


def maybe_gunzip(data: bytes, max_bytes: int) -> bytes:
    """Sitemaps named .xml.gz arrive gzip-compressed without Content-Encoding; sniff the magic."""
    if data[:2] == b"\x1f\x8b":
        return gunzip_capped(data, max_bytes)
    if len(data) > max_bytes:
        raise TooLarge(f"sitemap exceeds {max_bytes} bytes")
    return data


def parse_lastmod(text: str | None) -> dt.datetime | None:
    """W3C datetime -> naive UTC.  A bare date (or year-month) is taken as the END of that
    period, so a page changed later on the same day is never mistaken for unchanged."""
    if not text:
        return None
    text = text.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time()) + dt.timedelta(days=1)
        if len(text) == 7:  # YYYY-MM
            year, month = int(text[:4]), int(text[5:7])
            return dt.datetime(year + month // 12, month % 12 + 1, 1)
        if len(text) == 4 and text.isdigit():
            return dt.datetime(int(text) + 1, 1, 1)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments, PIs, entity nodes
    return tag.rsplit("}", 1)[-1].lower()


def parse_sitemap(data: bytes, *, max_entries: int = MAX_ENTRIES) -> ParsedSitemap:
    """Parse an already-decompressed sitemap body."""
    head = data.lstrip()[:1]
    if head and head != b"<":
        return _parse_text(data, max_entries)
    kind: Literal["index", "urlset", "text", "unknown"] = "unknown"
    entries: list[SitemapEntry] = []
    try:
        context = etree.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        depth = 0
        for event, elem in context:
            name = _local(elem.tag)
            if event == "start":
                depth += 1
                if depth == 1:
                    kind = "index" if name == "sitemapindex" else "urlset" if name == "urlset" else "unknown"
                continue
            depth -= 1
            if depth == 1 and name in ("url", "sitemap"):
                loc = lastmod = None
                for child in elem:
                    cname = _local(child.tag)
                    if cname == "loc":
                        # A <loc> with child nodes (an unexpanded entity, markup) is not a
                        # plain URL; taking only its leading text would invent a wrong one.
                        loc = None if len(child) else (child.text or "").strip()
                    elif cname == "lastmod":
                        lastmod = parse_lastmod(child.text)
                if loc:
                    entries.append(SitemapEntry(loc, lastmod))
                # Drop what we have read so memory stays flat on 50k-entry files.
                elem.clear()
                parent = elem.getparent()
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]
                if len(entries) >= max_entries:
                    return ParsedSitemap(kind, tuple(entries), f"stopped at {max_entries} entries")
    except etree.XMLSyntaxError as exc:
        return ParsedSitemap(kind, tuple(entries), f"malformed XML: {exc}")
    return ParsedSitemap(kind, tuple(entries))


def _parse_text(data: bytes, max_entries: int) -> ParsedSitemap:
    entries = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(SitemapEntry(line))
            if len(entries) >= max_entries:
                return ParsedSitemap("text", tuple(entries), f"stopped at {max_entries} entries")
    return ParsedSitemap("text", tuple(entries))
