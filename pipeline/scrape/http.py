"""One polite GET with retries, manual redirects and size caps.

Every request goes through `Fetcher.fetch`, which
* refuses any URL outside the site's allowed hosts (also redirect targets) and
  anything robots.txt disallows,
* waits for the host's limiter (rate, concurrency, Retry-After pauses),
* streams the body and stops at the byte caps, decoding gzip/deflate itself so
  the cap applies to both wire and decoded bytes,
* retries timeouts, connection errors, 408/425/429/5xx and interstitials with
  exponential backoff + jitter, never 404/410 or other 4xx.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from pipeline.scrape.config import Clock, CrawlConfig
from pipeline.scrape.politeness import Feedback, HostDeferred, Limiters, backoff_delay, parse_retry_after
from pipeline.scrape.sites import CrawlSite, normalize_url, url_netloc

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_DRAIN_BYTES = 64 * 1024  # read this much of an error body so the connection can be reused

# A validator looks at a 200 body and returns a reason it is not what we asked for (or None).
Validator = Callable[[bytes], "str | None"]


class TooLarge(Exception):
    pass


class _Deadline(Exception):
    pass


@dataclass(frozen=True, slots=True)
class HttpResult:
    url: str  # as requested
    final_url: str  # after in-host redirects
    status: int | None  # last HTTP status seen (None: no response)
    body: bytes | None  # decoded body of a 200 (also kept for a rejected interstitial)
    etag: str | None
    last_modified: str | None
    content_type: str | None
    requested_at: dt.datetime  # when the first attempt was started (naive UTC)
    elapsed_ms: int  # duration of the last attempt
    attempts: int  # requests sent, redirect hops included
    error: str | None = None  # None = success (200 accepted or 304)
    deferred: bool = False  # the host asked for a pause longer than we block: not attempted


@dataclass(slots=True)
class _Attempt:
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: bytes | None = None
    error: str | None = None
    retryable: bool = False
    elapsed_s: float = 0.0

    def header(self, name: str) -> str | None:
        return None if self.headers is None else self.headers.get(name)


class _Decoder:
    """Content-Encoding decoder with an output cap (gzip bombs stop at the cap)."""

    def __init__(self, encoding: str | None):
        enc = (encoding or "identity").strip().lower()
        if enc in ("", "identity"):
            self._dec = None
        elif enc in ("gzip", "x-gzip"):
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._dec = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_fallback = True
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        self._started = False

    def feed(self, chunk: bytes, room: int) -> bytes:
        if self._dec is None:
            return chunk[: room + 1]
        try:
            out = self._dec.decompress(chunk, room + 1)
        except zlib.error:
            if not self._started and getattr(self, "_raw_fallback", False):
                # Some servers send raw deflate without the zlib header.
                self._dec = zlib.decompressobj(-zlib.MAX_WBITS)
                self._raw_fallback = False
                out = self._dec.decompress(chunk, room + 1)
            else:
                raise
        self._started = True
        return out

    def finish(self) -> bytes:
        if self._dec is None:
            return b""
        if not self._dec.eof:
            raise ValueError("compressed body ended early (truncated)")
        return self._dec.flush()


class Fetcher:
    def __init__(
        self,
        site: CrawlSite,
        config: CrawlConfig,
        clock: Clock,
        limiters: Limiters,
        *,
        can_fetch: Callable[[str], bool] | None = None,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ):
        self.site = site
        self.config = config
        self.clock = clock
        self.limiters = limiters
        self.can_fetch = can_fetch  # robots check; set once robots.txt is loaded
        self.rng = rng or random.Random()
        # Set on Ctrl-C / shutdown: workers stop before their next attempt instead of
        # finishing their retries, so the crawl exits within one request timeout.
        self.stopping = threading.Event()
        self._own_client = client is None
        self.client = client or httpx.Client(
            headers={
                "User-Agent": config.user_agent,
                # Only encodings we decode ourselves under the size cap.
                "Accept-Encoding": "gzip, deflate",
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
            },
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout + config.total_timeout,
            ),
            follow_redirects=False,  # each hop is checked against the allowed hosts
            trust_env=False,  # no proxies or .netrc credentials from the environment
            limits=httpx.Limits(
                max_connections=4 * config.concurrency, max_keepalive_connections=2 * config.concurrency
            ),
        )

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # -------------------------------------------------------------------------
    def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int,
        max_wire_bytes: int | None = None,
        validate: Validator | None = None,
        check_robots: bool = True,
    ) -> HttpResult:
        cfg = self.config
        requested_at = self.clock.now()
        current = normalize_url(url) or url
        hops = attempts = failures = 0
        last = _Attempt()

        def result(error: str | None, *, deferred: bool = False) -> HttpResult:
            return HttpResult(
                url=url,
                final_url=current,
                status=last.status,
                body=last.body,
                etag=last.header("etag"),
                last_modified=last.header("last-modified"),
                content_type=last.header("content-type"),
                requested_at=requested_at,
                elapsed_ms=round(last.elapsed_s * 1000),
                attempts=attempts,
                error=error,
                deferred=deferred,
            )

        while True:
            if self.stopping.is_set():
                return result("crawl stopped before this request", deferred=True)
            if not self.site.is_allowed_host(current):
                why = "redirected to" if hops else "refusing to request"
                return result(f"{why} {current}: host not allowed for {self.site.name}; not requested")
            if check_robots and (self.can_fetch is None or not self.can_fetch(current)):
                return result(f"disallowed by robots.txt: {current}")
            try:
                last = self._attempt(current, headers, max_bytes, max_wire_bytes or max_bytes)
            except HostDeferred as exc:
                return result(str(exc), deferred=True)
            attempts += 1
            if last.status in REDIRECT_STATUSES and last.error is None:
                location = last.header("location")
                target = normalize_url(urljoin(current, location)) if location else None
                if target is None:
                    return result(f"HTTP {last.status} redirect without a usable Location ({location!r})")
                hops += 1
                if hops > cfg.max_redirects:
                    return result(f"more than {cfg.max_redirects} redirects")
                current = target
                continue
            error, retryable = self._classify(last, validate)
            if error is None:
                return result(None)
            if not retryable or failures >= cfg.max_retries:
                if failures:
                    error = f"{error} (after {failures + 1} attempts)"
                return result(error)
            failures += 1
            # Retry-After is enforced by the host limiter (it pauses every worker); the
            # backoff here only spreads out retries of this URL.
            self.clock.sleep(backoff_delay(failures, cfg, self.rng))

    @staticmethod
    def _classify(a: _Attempt, validate: Validator | None) -> tuple[str | None, bool]:
        if a.error is not None:
            return a.error, a.retryable
        status = a.status
        if status == 200:
            reason = validate(a.body or b"") if validate else None
            return (reason, True) if reason else (None, False)
        if status == 304:
            return None, False
        if status in RETRY_STATUSES or (status is not None and status >= 500):
            return f"HTTP {status}", True
        return f"HTTP {status}", False

    def _attempt(self, url: str, headers: Mapping[str, str] | None, max_bytes: int, max_wire: int) -> _Attempt:
        limiter = self.limiters.get(url_netloc(url))
        limiter.acquire()
        t0 = self.clock.monotonic()
        a = _Attempt()
        retry_after = None
        try:
            with self.client.stream("GET", url, headers=dict(headers or {})) as resp:
                a.status = resp.status_code
                a.headers = resp.headers
                if a.status in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("retry-after"), self.clock.now())
                if a.status == 200:
                    a.body = self._read_capped(resp, max_bytes, max_wire, t0)
                else:
                    self._drain(resp)
        except TooLarge as exc:
            a.error, a.retryable, a.body = str(exc), False, None
        except _Deadline:
            a.error, a.retryable, a.body = f"response took longer than {self.config.total_timeout:.0f}s", True, None
        except httpx.TimeoutException as exc:
            a.error, a.retryable = f"timeout: {type(exc).__name__}", True
        except httpx.TransportError as exc:
            a.error, a.retryable = f"connection error: {type(exc).__name__}: {exc}", True
        except (zlib.error, ValueError) as exc:
            a.error, a.retryable, a.body = f"undecodable body: {exc}", True, None
        finally:
            a.elapsed_s = self.clock.monotonic() - t0
            failed_transport = a.error is not None and a.retryable
            limiter.release(Feedback(None if failed_transport else a.status, a.elapsed_s, retry_after))
        return a

    def _read_capped(self, resp: httpx.Response, max_bytes: int, max_wire: int, t0: float) -> bytes:
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_wire:
            raise TooLarge(f"response too large: Content-Length {declared} > cap {max_wire} bytes")
        decoder = _Decoder(resp.headers.get("content-encoding"))
        deadline = t0 + self.config.total_timeout
        out: list[bytes] = []
        wire = size = 0
        for chunk in resp.iter_raw():
            wire += len(chunk)
            if wire > max_wire:
                raise TooLarge(f"response too large: more than {max_wire} bytes on the wire; stopped reading")
            data = decoder.feed(chunk, max_bytes - size)
            size += len(data)
            if size > max_bytes:
                raise TooLarge(f"response too large: more than {max_bytes} bytes decoded; stopped reading")
            out.append(data)
            if self.clock.monotonic() > deadline:
                raise _Deadline()
        tail = decoder.finish()
        size += len(tail)
        if size > max_bytes:
            raise TooLarge(f"response too large: more than {max_bytes} bytes decoded")
        out.append(tail)
        return b"".join(out)

    @staticmethod
    def _drain(resp: httpx.Response) -> None:
        read = 0
        for chunk in resp.iter_raw():
            read += len(chunk)
            if read > _DRAIN_BYTES:
                break
