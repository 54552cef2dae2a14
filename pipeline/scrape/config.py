"""Every crawl threshold in one frozen dataclass, plus the injectable clock."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Protocol

DEFAULT_USER_AGENT = "trial-warehouse-bot/0.1 (+https://example.invalid/contact)"


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    # Identity: an honest UA naming the project and a contact, and the token robots.txt
    # groups are matched against (the UA's product name).
    user_agent: str = DEFAULT_USER_AGENT
    # Politeness, per host.  The effective interval is max(1/rate, robots Crawl-delay,
    # robots Request-rate) and grows adaptively when the host struggles.
    rate: float = 1.0  # request starts per second
    concurrency: int = 2  # requests in flight
    slow_response_s: float = 5.0  # a response slower than this slows the host down
    slowdown_factor: float = 2.0  # interval multiplier on 429/503/slow
    recovery_factor: float = 0.9  # interval multiplier on a good response (back to base)
    max_interval_s: float = 60.0  # adaptive slow-down never spaces requests more than this
    # Timeouts (seconds).  total_timeout bounds a trickling body that never trips read_timeout.
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    # Retries: exponential backoff with jitter on timeouts, connection errors, 408/429/5xx
    # and interstitials.  A Retry-After longer than max_retry_after_s is not waited out:
    # the host's remaining pages are deferred to the next run instead.
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0
    max_redirects: int = 5
    # Size caps: bytes read off the wire and bytes after Content-Encoding/gzip decoding.
    max_page_bytes: int = 5_000_000
    max_sitemap_bytes: int = 50_000_000  # sitemaps.org limit, decompressed
    max_sitemap_wire_bytes: int = 50_000_000
    max_robots_bytes: int = 500_000  # RFC 9309 lets crawlers stop at 500 KiB
    max_sitemaps: int = 2_000
    max_sitemap_depth: int = 3
    # Incremental behaviour.
    use_lastmod: bool = True  # skip pages whose sitemap lastmod predates our last good fetch
    resume: bool = True  # continue an unfinished crawl of the same source instead of restarting
    # Fetch rows are written in batches: this many rows or this many seconds, whichever first.
    # A kill loses at most one unflushed batch, which the resumed crawl fetches again
    # (its bodies are already in the raw store), so keep the window short.
    batch_rows: int = 16
    batch_seconds: float = 0.5

    @property
    def robots_token(self) -> str:
        return self.user_agent.split("/", 1)[0].split()[0]

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.concurrency < 1:
            raise ValueError("rate must be > 0 and concurrency >= 1")
        if self.max_retries < 0 or self.max_redirects < 0:
            raise ValueError("max_retries and max_redirects must be >= 0")


class Clock(Protocol):
    """Time source the crawler sleeps and stamps with; tests pass a fake one."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> dt.datetime:  # naive UTC, like RawPage.fetched_at
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
