"""Per-host pacing: spaced request starts, a cap on requests in flight, adaptive slow-down.

Every request to a host -- robots.txt, sitemaps, pages, redirect hops, retries --
passes through that host's `HostLimiter`, so the spacing holds no matter which
code path sends it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import threading
from dataclasses import dataclass

from pipeline.scrape.config import Clock, CrawlConfig


class HostDeferred(Exception):
    """The host asked us to wait longer than we are willing to block; try next run."""


@dataclass(frozen=True, slots=True)
class Feedback:
    status: int | None  # None = transport error
    elapsed_s: float
    retry_after_s: float | None = None


class HostLimiter:
    def __init__(self, host: str, config: CrawlConfig, clock: Clock, *, min_interval_s: float = 0.0):
        self.host = host
        self._clock = clock
        self._config = config
        # Base spacing: our configured rate, or robots.txt's Crawl-delay if that is slower.
        self.base_interval = max(1.0 / config.rate, min_interval_s)
        self.interval = self.base_interval
        self._next_start = 0.0
        self._pause_until = 0.0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.concurrency)

    def set_min_interval(self, seconds: float) -> None:
        with self._lock:
            self.base_interval = max(1.0 / self._config.rate, seconds)
            self.interval = max(self.interval, self.base_interval)

    def acquire(self) -> None:
        """Block until this thread may start a request; raise HostDeferred if that is too far off."""
        self._slots.acquire()
        try:
            while True:
                with self._lock:
                    now = self._clock.monotonic()
                    start = max(now, self._next_start, self._pause_until)
                    if start - now > self._config.max_retry_after_s:
                        raise HostDeferred(
                            f"{self.host} asked us to wait {start - now:.0f}s "
                            f"(> max_retry_after_s={self._config.max_retry_after_s:.0f})"
                        )
                    self._next_start = start + self.interval
                self._clock.sleep(start - now)
                # A 429 that arrived while we slept moves the pause; honour it before sending.
                with self._lock:
                    if self._clock.monotonic() >= self._pause_until:
                        return
        except BaseException:
            self._slots.release()
            raise

    def release(self, feedback: Feedback) -> None:
        cfg = self._config
        with self._lock:
            struggling = (
                feedback.status in (429, 503)
                or feedback.status is None
                or feedback.elapsed_s > cfg.slow_response_s
            )
            if struggling:
                self.interval = min(cfg.max_interval_s, max(self.interval, self.base_interval) * cfg.slowdown_factor)
                self.interval = max(self.interval, self.base_interval)
            else:
                self.interval = max(self.base_interval, self.interval * cfg.recovery_factor)
            if feedback.retry_after_s is not None:
                until = self._clock.monotonic() + feedback.retry_after_s
                self._pause_until = max(self._pause_until, until)
                # Whoever goes next starts no earlier than the pause end.
                self._next_start = max(self._next_start, until)
        self._slots.release()


class Limiters:
    """One HostLimiter per host, created on first use."""

    def __init__(self, config: CrawlConfig, clock: Clock):
        self._config = config
        self._clock = clock
        self._by_host: dict[str, HostLimiter] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> HostLimiter:
        with self._lock:
            lim = self._by_host.get(host)
            if lim is None:
                lim = self._by_host[host] = HostLimiter(host, self._config, self._clock)
            return lim


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After as seconds from `now` (naive UTC): delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, config: CrawlConfig, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped.

    attempt is 1 for the wait after the first failure.  Jitter keeps two workers that
    failed together from retrying in lockstep.
    """
    ceiling = min(config.backoff_max_s, config.backoff_base_s * (2 ** (attempt - 1)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
