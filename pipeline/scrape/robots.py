"""robots.txt per host (RFC 9309 semantics, parsed by protego).

* 2xx: the rules apply, including Crawl-delay / Request-rate for our token.
* 4xx (except 429): "unavailable" -- the site has no rules for us; all allowed.
* 5xx, 429 or no answer after retries: "unreachable" -- assume everything is
  disallowed, so the crawl of that host stops (`RobotsUnreachable`).
A host whose robots.txt was never loaded is treated as disallowed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from protego import Protego

from pipeline.scrape.http import Fetcher, HttpResult
from pipeline.scrape.sites import normalize_url, url_netloc


class RobotsUnreachable(Exception):
    def __init__(self, message: str, fetch: HttpResult):
        super().__init__(message)
        self.fetch = fetch


@dataclass(frozen=True, slots=True)
class RobotsInfo:
    host: str
    url: str
    status: int | None
    allow_all: bool
    sitemaps: tuple[str, ...]
    min_interval_s: float  # from Crawl-delay / Request-rate; 0 when none
    fetch: HttpResult


class RobotsRules:
    def __init__(self, token: str):
        self.token = token
        self._parsers: dict[str, Protego | None] = {}  # None = allow all
        self._lock = threading.Lock()

    def load(self, fetcher: Fetcher, origin: str, max_bytes: int) -> RobotsInfo:
        url = origin.rstrip("/") + "/robots.txt"
        host = url_netloc(normalize_url(url) or url)
        res = fetcher.fetch(url, max_bytes=max_bytes, check_robots=False)
        status = res.status
        if res.error is None and status == 200:
            text = (res.body or b"").decode("utf-8", "replace")
            parser = Protego.parse(text)
            delay = parser.crawl_delay(self.token) or 0.0
            rate = parser.request_rate(self.token)
            if rate is not None and rate.requests:
                delay = max(delay, rate.seconds / rate.requests)
            with self._lock:
                self._parsers[host] = parser
            return RobotsInfo(host, url, status, False, tuple(parser.sitemaps), float(delay), res)
        if status is not None and 400 <= status < 500 and status != 429:
            with self._lock:
                self._parsers[host] = None
            return RobotsInfo(host, url, status, True, (), 0.0, res)
        raise RobotsUnreachable(
            f"robots.txt at {url} unreachable ({res.error or f'HTTP {status}'}); "
            "RFC 9309 says to assume the whole site is disallowed, so nothing was crawled",
            res,
        )

    def can_fetch(self, url: str) -> bool:
        norm = normalize_url(url)
        if norm is None:
            return False
        with self._lock:
            if url_netloc(norm) not in self._parsers:
                return False
            parser = self._parsers[url_netloc(norm)]
        return parser is None or parser.can_fetch(norm, self.token)
