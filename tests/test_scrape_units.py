"""Crawler building blocks without sockets: adapters, sitemaps, pacing, retries, state.

HTTP behaviour is exercised through httpx.MockTransport and a fake clock, so retries,
Retry-After and backoff run instantly and every sleep is observable.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
import threading
from pathlib import Path

import duckdb
import httpx
import pytest

from pipeline.scrape import CrawlConfig
from pipeline.scrape import state as st
from pipeline.scrape.http import Fetcher
from pipeline.scrape.politeness import Feedback, HostDeferred, HostLimiter, Limiters, backoff_delay, parse_retry_after
from pipeline.scrape.sitemap import TooLarge, gunzip_capped, maybe_gunzip, parse_lastmod, parse_sitemap
from pipeline.scrape.sites import SITES, get_site, normalize_url

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "raw" / "sample" / "seeds"
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


class FakeClock:
    """Monotonic time that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self.t += seconds

    def now(self) -> dt.datetime:
        return dt.datetime(2025, 7, 1) + dt.timedelta(seconds=self.t)


# --------------------------------------------------------------------------- sites
def test_site_registry_and_study_patterns():
    veeva, cc = SITES["veeva"], SITES["clinconnect"]
    assert veeva.base_url == "https://ctv.veeva.com" and cc.base_url == "https://clinconnect.io"
    assert veeva.is_study_url("https://ctv.veeva.com/study/clinical-trial-of-cd123-car-nk")
    assert veeva.study_key("https://CTV.veeva.com:443/study/il3-car-t#top") == "il3-car-t"
    assert not veeva.is_study_url("https://ctv.veeva.com/study/x?page=2")  # no query traps
    assert not veeva.is_study_url("https://ctv.veeva.com/studies")
    assert not veeva.is_study_url("https://evil.example/study/x")
    assert not veeva.is_study_url("https://user:pw@ctv.veeva.com/study/x")
    assert cc.is_study_url("https://clinconnect.io/trials/NCT04599543")
    assert cc.study_key("https://clinconnect.io/trials/nct04599543") == "NCT04599543"
    assert not cc.is_study_url("https://clinconnect.io/trials/some-title")
    assert not cc.is_study_url("https://ctv.veeva.com/trials/NCT04599543")


def test_base_url_override_replaces_allowed_hosts():
    site = get_site("veeva", "http://127.0.0.1:8123/")
    assert site.base_url == "http://127.0.0.1:8123"
    assert site.allowed_hosts == frozenset({"127.0.0.1:8123"})
    assert site.is_study_url("http://127.0.0.1:8123/study/a")
    assert not site.is_study_url("https://ctv.veeva.com/study/a")  # never falls through to the real site
    assert not site.is_study_url("http://127.0.0.1:8124/study/a")  # another port is another host
    with pytest.raises(ValueError):
        get_site("nope")


def test_normalize_url():
    assert normalize_url("HTTPS://Ctv.Veeva.com:443/study/a#x") == "https://ctv.veeva.com/study/a"
    assert normalize_url("http://h:8080") == "http://h:8080/"
    assert normalize_url("ftp://h/x") is None and normalize_url("/study/x") is None
    assert normalize_url("http://h:99999/") is None


def test_study_markers_accept_real_captures_and_reject_interstitials():
    seeds = sorted(SEEDS.glob("*.txt"))
    assert len(seeds) == 5
    by_site = {"003": "clinconnect"}
    for path in seeds:
        site = SITES[by_site.get(path.name[:3], "veeva")]
        assert site.looks_like_study(path.read_bytes()), path.name
    challenge = b"<html><h1>Just a moment...</h1><p>Checking your browser. Enable JavaScript and cookies.</p></html>"
    assert not SITES["veeva"].looks_like_study(challenge)
    assert not SITES["clinconnect"].looks_like_study(challenge)


# --------------------------------------------------------------------------- sitemaps
def test_parse_sitemap_index_and_urlset_with_lastmod():
    index = f"""<?xml version="1.0"?><sitemapindex {NS}>
      <sitemap><loc> https://ctv.veeva.com/sm-1.xml.gz </loc><lastmod>2025-06-01</lastmod></sitemap>
      <!-- comment --><sitemap><loc>https://ctv.veeva.com/sm-2.xml</loc></sitemap></sitemapindex>""".encode()
    parsed = parse_sitemap(index)
    assert parsed.kind == "index" and parsed.error is None
    assert [e.loc for e in parsed.entries] == ["https://ctv.veeva.com/sm-1.xml.gz", "https://ctv.veeva.com/sm-2.xml"]
    urlset = b"""<urlset><url><loc>https://ctv.veeva.com/study/a</loc><lastmod>2025-06-01T10:00:00+02:00</lastmod>
      <changefreq>daily</changefreq></url><url><loc>https://ctv.veeva.com/study/b</loc></url></urlset>"""
    parsed = parse_sitemap(urlset)  # no namespace is tolerated
    assert parsed.kind == "urlset"
    assert parsed.entries[0].lastmod == dt.datetime(2025, 6, 1, 8, 0)
    assert parsed.entries[1].lastmod is None


def test_lastmod_dates_mean_end_of_period():
    assert parse_lastmod("2025-06-01") == dt.datetime(2025, 6, 2)
    assert parse_lastmod("2025-12") == dt.datetime(2026, 1, 1)
    assert parse_lastmod("2025-06-01T10:00Z") == dt.datetime(2025, 6, 1, 10, 0)
    assert parse_lastmod("yesterday") is None and parse_lastmod(None) is None


def test_sitemap_parser_resolves_no_entities():
    xxe = b"""<?xml version="1.0"?><!DOCTYPE u [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
      <urlset><url><loc>http://a/&xxe;</loc></url><url><loc>http://a/ok</loc></url></urlset>"""
    parsed = parse_sitemap(xxe)
    assert [e.loc for e in parsed.entries] == ["http://a/ok"]  # entity loc dropped, not truncated
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY l0 "lol">{lol}]><urlset><url><loc>http://a/&l9;</loc></url></urlset>'
    parsed = parse_sitemap(bomb.encode())
    assert parsed.entries == () and parsed.error is not None  # refused, not expanded


def test_sitemap_caps_and_malformed_input():
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    assert len(bomb) < 10_000
    with pytest.raises(TooLarge):
        maybe_gunzip(bomb, max_bytes=1_000_000)
    with pytest.raises(ValueError, match="truncated"):
        gunzip_capped(gzip.compress(b"<urlset/>")[:-6], 1000)
    assert maybe_gunzip(b"<urlset/>", 100) == b"<urlset/>"
    broken = b"<urlset><url><loc>http://a/1</loc></url><url><loc>http://a/2</loc></url><url><loc>oops"
    parsed = parse_sitemap(broken)
    assert [e.loc for e in parsed.entries] == ["http://a/1", "http://a/2"] and "malformed" in parsed.error
    many = b"<urlset>" + b"".join(b"<url><loc>http://a/%d</loc></url>" % i for i in range(30)) + b"</urlset>"
    capped = parse_sitemap(many, max_entries=10)
    assert len(capped.entries) == 10 and "stopped" in capped.error
    text = parse_sitemap(b"http://a/1\n# comment\n\nhttp://a/2\n")
    assert text.kind == "text" and [e.loc for e in text.entries] == ["http://a/1", "http://a/2"]


# --------------------------------------------------------------------------- pacing
def test_parse_retry_after():
    now = dt.datetime(2025, 7, 1, 12, 0, 0)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 01 Jul 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Tue, 01 Jul 2025 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_backoff_is_exponential_with_jitter_and_capped():
    cfg = CrawlConfig(backoff_base_s=1.0, backoff_max_s=10.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [backoff_delay(attempt, cfg, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_host_limiter_spacing_slowdown_recovery_and_pause():
    clock = FakeClock()
    cfg = CrawlConfig(rate=2.0, concurrency=2, max_retry_after_s=60)
    lim = HostLimiter("h", cfg, clock)
    starts = []
    for _ in range(3):
        lim.acquire()
        starts.append(clock.monotonic())
        lim.release(Feedback(200, 0.1))
    assert [round(b - a, 3) for a, b in zip(starts, starts[1:])] == [0.5, 0.5]
    lim.acquire()
    lim.release(Feedback(429, 0.1, retry_after_s=10))
    assert lim.interval == 1.0  # doubled
    t = clock.monotonic()
    lim.acquire()
    assert clock.monotonic() - t == pytest.approx(10.0)  # waited out Retry-After
    lim.release(Feedback(200, 0.1))
    assert lim.interval == pytest.approx(0.9)
    for _ in range(20):
        lim.acquire()
        lim.release(Feedback(200, 0.1))
    assert lim.interval == 0.5  # recovered to base, never below
    lim.acquire()
    lim.release(Feedback(200, cfg.slow_response_s + 1))  # slow response also slows down
    assert lim.interval == 1.0
    lim.acquire()
    lim.release(Feedback(503, 0.1, retry_after_s=3600))
    with pytest.raises(HostDeferred, match="wait"):
        lim.acquire()  # too long to block: defer instead


def test_host_limiter_caps_requests_in_flight():
    clock = FakeClock()
    lim = HostLimiter("h", CrawlConfig(rate=1000, concurrency=2), clock)
    lim.acquire()
    lim.acquire()
    got_third = threading.Event()

    def third():
        lim.acquire()
        got_third.set()

    th = threading.Thread(target=third, daemon=True)
    th.start()
    assert not got_third.wait(0.2)
    lim.release(Feedback(200, 0.0))
    assert got_third.wait(2)
    th.join()


def test_crawl_delay_raises_base_interval():
    lim = HostLimiter("h", CrawlConfig(rate=10), FakeClock())
    lim.set_min_interval(3.0)
    assert lim.base_interval == 3.0 and lim.interval == 3.0


# --------------------------------------------------------------------------- http
class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks):
        self.chunks = list(chunks)

    def __iter__(self):
        yield from self.chunks


def resp(status, content=b"", headers=None, chunks=None):
    """A streamed mock response, like a real socket gives (httpx reads bytes= bodies eagerly)."""
    headers = dict(headers or {})
    if chunks is None:
        headers.setdefault("Content-Length", str(len(content)))
        chunks = [content] if content else []
    return httpx.Response(status, headers=headers, stream=_Chunks(chunks))


def _fetcher(handler, clock=None, **cfg_kw):
    site = get_site("veeva", "http://mirror.test")
    cfg = CrawlConfig(**{"rate": 1000, "backoff_base_s": 1.0, **cfg_kw})
    clock = clock or FakeClock()
    sent: list[httpx.Request] = []

    def record(request):
        sent.append(request)
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(record), follow_redirects=False,
                          headers={"User-Agent": cfg.user_agent})
    f = Fetcher(site, cfg, clock, Limiters(cfg, clock), can_fetch=lambda u: "/private" not in u,
                client=client, rng=random.Random(1))
    return f, sent, clock


def test_fetch_retries_with_backoff_and_honours_retry_after():
    script = iter([
        resp(503),
        resp(429, headers={"Retry-After": "30"}),
        resp(200, content=b"ok page"),
    ])
    f, sent, clock = _fetcher(lambda r: next(script))
    res = f.fetch("http://mirror.test/study/a", max_bytes=1000)
    assert res.error is None and res.body == b"ok page" and res.attempts == 3
    assert len(sent) == 3
    sleeps = [s for s in clock.sleeps if s > 0]
    assert sum(sleeps) >= 30  # Retry-After honoured (by the host pause) ...
    assert 0.5 <= sleeps[0] <= 1.0  # ... and the first backoff is jittered base


def test_fetch_gives_up_after_max_retries_and_does_not_retry_404():
    f, sent, _ = _fetcher(lambda r: resp(500), max_retries=2)
    res = f.fetch("http://mirror.test/study/a", max_bytes=1000)
    assert res.status == 500 and "after 3 attempts" in res.error and len(sent) == 3
    f, sent, _ = _fetcher(lambda r: resp(404))
    res = f.fetch("http://mirror.test/study/a", max_bytes=1000)
    assert res.error == "HTTP 404" and len(sent) == 1


def test_fetch_retries_connection_errors_and_timeouts():
    script = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), None])

    def handler(request):
        exc = next(script)
        if exc is not None:
            raise exc
        return resp(200, content=b"fine")

    f, sent, _ = _fetcher(handler)
    res = f.fetch("http://mirror.test/study/a", max_bytes=1000)
    assert res.body == b"fine" and res.attempts == 3


def test_redirects_followed_only_within_allowed_hosts():
    def handler(request):
        if request.url.path == "/study/old":
            return resp(301, headers={"Location": "/study/new"})
        if request.url.path == "/study/new":
            return resp(200, content=b"new")
        if request.url.path == "/study/out":
            return resp(302, headers={"Location": "https://evil.example/study/x"})
        if request.url.path == "/study/loop":
            return resp(302, headers={"Location": "/study/loop"})
        if request.url.path == "/study/hidden":
            return resp(302, headers={"Location": "/private/x"})
        raise AssertionError(f"unexpected request {request.url}")

    f, sent, _ = _fetcher(handler)
    res = f.fetch("http://mirror.test/study/old", max_bytes=1000)
    assert res.body == b"new" and res.final_url == "http://mirror.test/study/new"
    res = f.fetch("http://mirror.test/study/out", max_bytes=1000)
    assert "host not allowed" in res.error and res.body is None
    res = f.fetch("http://mirror.test/study/loop", max_bytes=1000)
    assert "redirects" in res.error
    res = f.fetch("http://mirror.test/study/hidden", max_bytes=1000)
    assert "robots.txt" in res.error
    assert all(r.url.host == "mirror.test" for r in sent)
    assert not any(r.url.path.startswith("/private") for r in sent)
    res = f.fetch("https://evil.example/study/x", max_bytes=1000)
    assert "not allowed" in res.error and all(r.url.host == "mirror.test" for r in sent)


def test_size_caps_on_wire_and_after_decoding():
    big = b"x" * 5000
    bomb = gzip.compress(b"y" * 2_000_000)

    def handler(request):
        if request.url.path == "/study/declared":
            return resp(200, content=big)  # Content-Length: 5000
        if request.url.path == "/study/bomb":
            return resp(200, content=bomb, headers={"Content-Encoding": "gzip"})
        if request.url.path == "/study/gz":
            return resp(200, content=gzip.compress(b"small page"), headers={"Content-Encoding": "gzip"})
        if request.url.path == "/study/stream":
            return resp(200, chunks=[b"z" * 800] * 10)  # no Content-Length
        raise AssertionError

    f, sent, _ = _fetcher(handler)
    assert "too large" in f.fetch("http://mirror.test/study/declared", max_bytes=1000).error
    res = f.fetch("http://mirror.test/study/bomb", max_bytes=1000, max_wire_bytes=10_000)
    assert "decoded" in res.error and res.attempts == 1  # not retried
    assert f.fetch("http://mirror.test/study/gz", max_bytes=1000).body == b"small page"
    res = f.fetch("http://mirror.test/study/stream", max_bytes=1000)
    assert "too large" in res.error and res.body is None


def test_interstitial_is_retried_then_reported():
    f, sent, _ = _fetcher(lambda r: resp(200, content=b"challenge"), max_retries=1)
    res = f.fetch("http://mirror.test/study/a", max_bytes=1000, validate=lambda b: "interstitial")
    assert res.error.startswith("interstitial") and res.body == b"challenge" and len(sent) == 2


def test_user_agent_and_conditional_headers_are_sent():
    f, sent, _ = _fetcher(lambda r: resp(304))
    res = f.fetch("http://mirror.test/study/a", max_bytes=10, headers={"If-None-Match": '"abc"'})
    assert res.status == 304 and res.error is None
    assert sent[0].headers["user-agent"].startswith("trial-warehouse-bot/0.1 (+")
    assert sent[0].headers["if-none-match"] == '"abc"'


# --------------------------------------------------------------------------- state
@pytest.fixture
def conn():
    c = duckdb.connect()
    c.execute(st.MIGRATION_FILE.read_text())
    yield c
    c.close()


def _row(crawl, url, at, outcome, **kw):
    base = dict(crawl_id=crawl, kind="page", url=url, final_url=url, source="veeva", requested_at=at,
                http_status=200, etag=None, last_modified=None, sitemap_lastmod=None, content_sha256=None,
                bytes=1, elapsed_ms=5, attempts=1, outcome=outcome, error=None)
    base.update(kw)
    return base


def test_migration_is_idempotent_and_state_derives_from_fetches(conn):
    conn.execute(st.MIGRATION_FILE.read_text())  # second application is a no-op
    t0 = dt.datetime(2025, 7, 1)
    w = st.FetchWriter(conn, batch_rows=3)
    w.add(_row("c1", "u1", t0, "fetched", etag='"e1"', content_sha256="a" * 64, sitemap_lastmod=t0))
    w.add(_row("c1", "u2", t0, "fetched", etag='"e2"', content_sha256="b" * 64))
    assert conn.execute("SELECT count(*) FROM fetches").fetchall()[0][0] == 0  # buffered
    w.add(_row("c2", "u2", t0 + dt.timedelta(days=1), "failed", http_status=503, error="HTTP 503"))
    assert conn.execute("SELECT count(*) FROM fetches").fetchall()[0][0] == 3  # one batch
    w.add(_row("c2", "u1", t0 + dt.timedelta(days=1), "unchanged", http_status=304, etag='"e1"',
               content_sha256="a" * 64, bytes=0))
    w.flush()
    states = st.load_url_states(conn, "veeva", exclude_crawl="none")
    assert states["u1"].last_outcome == "unchanged" and states["u1"].etag == '"e1"'
    assert states["u1"].conditional_headers() == {"If-None-Match": '"e1"'}
    assert states["u2"].last_outcome == "failed" and states["u2"].content_sha256 == "b" * 64
    # excluding the crawl being resumed hides its rows
    assert st.load_url_states(conn, "veeva", exclude_crawl="c2")["u2"].last_outcome == "fetched"
    assert st.done_urls(conn, "c2") == {"u1"}


def test_unchanged_per_sitemap_rules():
    at = dt.datetime(2025, 7, 1, 12)
    ok = st.UrlState("u", "fetched", at, '"e"', None, "a" * 64, sitemap_lastmod=dt.datetime(2025, 6, 1))
    assert ok.unchanged_per_sitemap(dt.datetime(2025, 6, 1))  # same lastmod as last time
    assert ok.unchanged_per_sitemap(dt.datetime(2025, 7, 1, 11))  # changed before we fetched
    assert not ok.unchanged_per_sitemap(dt.datetime(2025, 7, 1, 13))  # changed after
    assert not ok.unchanged_per_sitemap(None)
    failed = st.UrlState("u", "failed", at, '"e"', None, "a" * 64, dt.datetime(2025, 6, 1))
    assert not failed.unchanged_per_sitemap(dt.datetime(2025, 6, 1))  # failures always retried
