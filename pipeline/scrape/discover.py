"""Find a site's trial-page URLs: sitemaps (from robots.txt or /sitemap.xml) or a URL list.

Only study URLs on the site's allowed hosts survive; each keeps the newest
<lastmod> any sitemap gave it.  Sitemap URLs on other hosts are never fetched.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pipeline.scrape.config import CrawlConfig
from pipeline.scrape.http import Fetcher, HttpResult
from pipeline.scrape.sitemap import SitemapEntry, TooLarge, maybe_gunzip, parse_sitemap
from pipeline.scrape.sites import CrawlSite, normalize_url

# record(result, outcome_error) -- called for every sitemap request made
Recorder = Callable[[HttpResult, str | None], None]


@dataclass(frozen=True, slots=True)
class Discovery:
    via: Literal["sitemaps", "urls_file"]
    entries: tuple[SitemapEntry, ...]  # normalized study URLs, first-seen order, newest lastmod
    sitemaps_fetched: int = 0
    ignored: int = 0  # listed URLs that are not study pages on an allowed host
    errors: tuple[str, ...] = ()
    deferred: bool = False  # the host asked us to back off during discovery


class _Collector:
    def __init__(self, site: CrawlSite):
        self.site = site
        self.entries: dict[str, SitemapEntry] = {}
        self.ignored = 0

    def add(self, loc: str, lastmod) -> None:  # type: ignore[no-untyped-def]
        url = normalize_url(loc)
        if url is None or not self.site.is_study_url(url):
            self.ignored += 1
            return
        old = self.entries.get(url)
        if old is None:
            self.entries[url] = SitemapEntry(url, lastmod)
        elif lastmod is not None and (old.lastmod is None or lastmod > old.lastmod):
            self.entries[url] = SitemapEntry(url, lastmod)


def discover_from_file(path: str | os.PathLike[str], site: CrawlSite) -> Discovery:
    """A plain list: one URL per line; blank lines and '#' comments ignored."""
    col = _Collector(site)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                col.add(line, None)
    return Discovery("urls_file", tuple(col.entries.values()), ignored=col.ignored)


def discover_from_sitemaps(
    fetcher: Fetcher,
    site: CrawlSite,
    config: CrawlConfig,
    roots: Iterable[str],
    record: Recorder,
    on_progress: Callable[[int], None] | None = None,
) -> Discovery:
    col = _Collector(site)
    errors: list[str] = []
    queue: deque[tuple[str, int]] = deque()
    seen: set[str] = set()

    def enqueue(loc: str, depth: int) -> None:
        url = normalize_url(loc)
        if url is None or url in seen:
            return
        seen.add(url)
        if not site.is_allowed_host(url):
            errors.append(f"sitemap {url} is on a host outside {sorted(site.allowed_hosts)}; not fetched")
        elif site.skip_sitemap(url):
            pass
        elif depth > config.max_sitemap_depth:
            errors.append(f"sitemap {url} nested deeper than {config.max_sitemap_depth}; not fetched")
        else:
            queue.append((url, depth))

    for root in roots:
        enqueue(root, 0)
    fetched = 0
    while queue:
        if fetched >= config.max_sitemaps:
            errors.append(f"stopped after {config.max_sitemaps} sitemaps; {len(queue)} not fetched")
            break
        url, depth = queue.popleft()
        res = fetcher.fetch(url, max_bytes=config.max_sitemap_bytes, max_wire_bytes=config.max_sitemap_wire_bytes)
        if res.deferred:
            errors.append(f"sitemap {url}: {res.error}")
            return Discovery("sitemaps", tuple(col.entries.values()), fetched, col.ignored, tuple(errors), True)
        fetched += 1
        error = res.error
        parsed = None
        if error is None and res.status == 200:
            try:
                parsed = parse_sitemap(maybe_gunzip(res.body or b"", config.max_sitemap_bytes))
                error = parsed.error
            except (TooLarge, ValueError) as exc:
                error = str(exc)
        elif error is None:
            error = f"HTTP {res.status}"
        record(res, error)
        if error:
            errors.append(f"sitemap {url}: {error}")
        if parsed is not None:
            if parsed.kind == "index":
                for entry in parsed.entries:
                    enqueue(entry.loc, depth + 1)
            else:
                for entry in parsed.entries:
                    col.add(entry.loc, entry.lastmod)
        if on_progress:
            on_progress(len(col.entries))
    return Discovery("sitemaps", tuple(col.entries.values()), fetched, col.ignored, tuple(errors))
