"""crawl(): robots.txt -> discovery -> plan -> polite fetch -> raw store -> fetch rows.

Crash safety comes from ordering: a body is written to the content-addressed raw
store (atomically) *before* its fetch row, and rows are committed in batches.
Killed at any point, the store holds only whole objects (an object without a
row is harmless: the refetch finds it already stored), and the restarted crawl
resumes the same crawl_id, skipping URLs already finished in it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from pipeline.db.history import mark_unlisted
from pipeline.faults import checkpoint
from pipeline.ingest import raw_page_from_bytes
from pipeline.models import RawPage
from pipeline.rawstore import RawStore, RawStoreWriteError
from pipeline.scrape import state as st
from pipeline.scrape.config import Clock, CrawlConfig, SystemClock
from pipeline.scrape.discover import Discovery, discover_from_file, discover_from_sitemaps
from pipeline.scrape.http import Fetcher, HttpResult
from pipeline.scrape.politeness import Limiters
from pipeline.scrape.progress import EventKind, ProgressCallback, ProgressEvent
from pipeline.scrape.robots import RobotsRules, RobotsUnreachable
from pipeline.scrape.sites import CrawlSite, get_site, normalize_url, url_netloc

CrawlStatus = Literal["finished", "deferred", "interrupted"]


@dataclass(frozen=True, slots=True)
class PageVersion:
    """A page version first stored by this crawl: hand it to parse/load."""

    url: str  # the crawl key (as discovered)
    final_url: str  # where the bytes came from (after in-host redirects)
    source: str
    content_sha256: str
    fetched_at: dt.datetime  # naive UTC
    raw_path: str
    bytes: int

    def to_raw_page(self, store: RawStore) -> RawPage:
        content = store.get(self.source, self.content_sha256)  # verifies the hash
        return raw_page_from_bytes(self.final_url, content, self.fetched_at, self.source)


@dataclass(frozen=True, slots=True)
class CrawlResult:
    crawl_id: str
    source: str
    base_url: str
    status: CrawlStatus  # deferred = host asked for a long pause; the next run resumes
    resumed: bool  # continued an interrupted crawl_id
    discovered: int  # study URLs found
    planned: int  # pages requested by this run
    skipped_unchanged: int  # sitemap lastmod says unchanged since our last good fetch
    skipped_done: int  # already finished by the interrupted run we resumed
    skipped_since: int  # lastmod older than `since`
    disallowed: int  # robots.txt forbids them; never requested
    fetched: int  # new versions stored by this run
    unchanged: int  # 304 / identical body
    gone: int  # 404/410
    failed: int  # errors after retries (retried next run)
    deferred: int  # not attempted because the host asked us to wait too long
    elapsed_s: float
    pages: tuple[PageVersion, ...]  # every new version of this crawl_id, incl. before a resume
    failures: tuple[tuple[str, str], ...]  # (url, error) of this run
    errors: tuple[str, ...] = ()  # discovery problems (bad sitemaps, foreign sitemap hosts)
    unlisted: int = 0  # URLs seen before that a complete sitemap discovery no longer lists

    def raw_pages(self, store: RawStore) -> Iterator[RawPage]:
        for page in self.pages:
            yield page.to_raw_page(store)


@dataclass(slots=True)
class _Item:
    url: str
    lastmod: dt.datetime | None
    state: st.UrlState | None


@dataclass(slots=True)
class _Counters:
    discovered: int = 0
    planned: int = 0
    completed: int = 0
    fetched: int = 0
    unchanged: int = 0
    gone: int = 0
    failed: int = 0
    deferred: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def _to_naive_utc(value: dt.date | dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def crawl(
    source: str,
    *,
    raw_root: str | os.PathLike[str] | RawStore,
    conn: duckdb.DuckDBPyConnection,
    config: CrawlConfig | None = None,
    base_url: str | None = None,
    limit: int | None = None,
    since: dt.date | dt.datetime | None = None,
    urls_file: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> CrawlResult:
    """Crawl one source politely into the raw store; log every request in `fetches`.

    `limit` caps the pages requested (after skipping unchanged ones); `since` keeps only
    sitemap entries with lastmod >= since (entries without lastmod are kept); `urls_file`
    replaces sitemap discovery with a plain URL list.  Raises RobotsUnreachable when the
    site's robots.txt cannot be read (nothing is crawled then).
    """
    cfg = config or CrawlConfig()
    clk = clock or SystemClock()
    site = get_site(source, base_url)
    store = raw_root if isinstance(raw_root, RawStore) else RawStore(raw_root)
    st.check_schema(conn)
    store.sweep_temp(site.name)

    now = clk.now()
    crawl_id = st.find_unfinished_crawl(conn, site.name, site.base_url) if cfg.resume else None
    resumed = crawl_id is not None
    if crawl_id is None:
        crawl_id = st.new_crawl_id(site.name, now)
        st.start_crawl(conn, crawl_id, site.name, site.base_url, now)
    else:
        st.end_crawl(conn, crawl_id, "running", now)

    checkpoint("crawl.started")
    runner = _Run(site, cfg, clk, store, conn, crawl_id, progress, rng)
    try:
        return runner.run(resumed=resumed, limit=limit, since=_to_naive_utc(since), urls_file=urls_file)
    finally:
        runner.close()


class _Run:
    def __init__(
        self,
        site: CrawlSite,
        cfg: CrawlConfig,
        clock: Clock,
        store: RawStore,
        conn: duckdb.DuckDBPyConnection,
        crawl_id: str,
        progress: ProgressCallback | None,
        rng: random.Random | None,
    ):
        self.site, self.cfg, self.clock, self.store, self.conn = site, cfg, clock, store, conn
        self.crawl_id = crawl_id
        self.progress = progress
        self.limiters = Limiters(cfg, clock)
        self.robots = RobotsRules(cfg.robots_token)
        self.fetcher = Fetcher(site, cfg, clock, self.limiters, can_fetch=self.robots.can_fetch, rng=rng)
        self.writer = st.FetchWriter(conn, cfg.batch_rows)
        self.c = _Counters()
        self._t0 = clock.monotonic()
        self._fetch_t0: float | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.fetcher.close()

    # -- rows ------------------------------------------------------------------
    def _row(
        self,
        kind: str,
        res: HttpResult,
        outcome: str,
        *,
        error: str | None = None,
        sha: str | None = None,
        size: int | None = None,
        lastmod: dt.datetime | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> dict[str, Any]:
        return {
            "crawl_id": self.crawl_id,
            "kind": kind,
            "url": normalize_url(res.url) or res.url,
            "final_url": res.final_url,
            "source": self.site.name,
            "requested_at": res.requested_at,
            "http_status": res.status,
            "etag": etag if etag is not None else res.etag,
            "last_modified": last_modified if last_modified is not None else res.last_modified,
            "sitemap_lastmod": lastmod,
            "content_sha256": sha,
            "bytes": size if size is not None else (len(res.body) if res.body is not None else None),
            "elapsed_ms": res.elapsed_ms,
            "attempts": res.attempts,
            "outcome": outcome,
            "error": error,
        }

    def _record_aux(self, kind: str, res: HttpResult, error: str | None) -> None:
        if res.deferred:
            return
        self.writer.add(self._row(kind, res, "failed" if error else "fetched", error=error))

    # -- progress --------------------------------------------------------------
    def _emit(self, kind: EventKind, url: str | None = None, message: str | None = None) -> None:
        if self.progress is None:
            return
        c = self.c
        now = self.clock.monotonic()
        elapsed = now - self._t0
        run_time = now - self._fetch_t0 if self._fetch_t0 is not None else 0.0
        rate = c.completed / run_time if run_time > 0 else 0.0
        eta = (c.planned - c.completed) / rate if rate > 0 else None
        self.progress(
            ProgressEvent(
                kind, self.site.name, url, c.discovered, c.planned, c.completed,
                c.fetched, c.unchanged, c.failed, elapsed, rate, eta, message,
            )
        )

    # -- main ------------------------------------------------------------------
    def run(
        self,
        *,
        resumed: bool,
        limit: int | None,
        since: dt.datetime | None,
        urls_file: str | os.PathLike[str] | None,
    ) -> CrawlResult:
        status: CrawlStatus = "interrupted"
        unlisted = 0
        try:
            discovery, disallowed, plan, skipped = self._prepare(limit, since, urls_file)
            checkpoint("crawl.discovered")
            self.c.planned = len(plan)
            self._emit("planned")
            deferred_in_fetch = self._fetch_all(plan)
            status = "deferred" if (discovery.deferred or deferred_in_fetch) else "finished"
            # Only a complete discovery proves a URL is no longer listed: every sitemap read
            # without error, no --urls list, no --limit (entries skipped by --since or robots
            # are still listed).
            if (status == "finished" and limit is None and discovery.via == "sitemaps"
                    and not discovery.errors and discovery.entries):
                self.writer.flush()
                unlisted = mark_unlisted(self.conn, self.site.name, self.crawl_id,
                                         (e.loc for e in discovery.entries), self.clock.now(),
                                         self.site.allowed_hosts)
        except RobotsUnreachable:
            status = "deferred"
            raise
        finally:
            # Runs on success, exceptions and Ctrl-C alike: committed rows are what resume reads.
            self.writer.flush()
            st.end_crawl(self.conn, self.crawl_id, status, self.clock.now())
        checkpoint("crawl.finished")
        pages_by_key: dict[tuple[str, str], PageVersion] = {}
        for url, final, sha, at, size in st.new_versions(self.conn, self.crawl_id):
            # Two listed URLs redirecting to one page give one page version, not two.
            key = (final or url, sha)
            if key not in pages_by_key:
                path = self.store.path_for(self.site.name, sha)
                pages_by_key[key] = PageVersion(url, final or url, self.site.name, sha, at, path, size or 0)
        pages = tuple(pages_by_key.values())
        c = self.c
        self._emit("done")
        return CrawlResult(
            crawl_id=self.crawl_id,
            source=self.site.name,
            base_url=self.site.base_url,
            status=status,
            resumed=resumed,
            discovered=c.discovered,
            planned=c.planned,
            skipped_unchanged=skipped["unchanged"],
            skipped_done=skipped["done"],
            skipped_since=skipped["since"],
            disallowed=disallowed,
            fetched=c.fetched,
            unchanged=c.unchanged,
            gone=c.gone,
            failed=c.failed,
            deferred=c.deferred,
            elapsed_s=self.clock.monotonic() - self._t0,
            pages=pages,
            failures=tuple(c.failures),
            errors=discovery.errors,
            unlisted=unlisted,
        )

    def _prepare(
        self, limit: int | None, since: dt.datetime | None, urls_file: str | os.PathLike[str] | None
    ) -> tuple[Discovery, int, list[_Item], dict[str, int]]:
        site, cfg = self.site, self.cfg
        robot_sitemaps: list[str] = []
        # robots.txt of every allowed host first: nothing else may be requested before it.
        for host in sorted(site.allowed_hosts):
            scheme = site.base_url.split("://", 1)[0]
            origin = f"{scheme}://{host}"
            try:
                info = self.robots.load(self.fetcher, origin, cfg.max_robots_bytes)
            except RobotsUnreachable as exc:
                self._record_aux("robots", exc.fetch, str(exc))
                raise
            self._record_aux("robots", info.fetch, info.fetch.error)
            self.limiters.get(host).set_min_interval(info.min_interval_s)
            if url_netloc(site.base_url + "/") == host:
                robot_sitemaps.extend(info.sitemaps)

        if urls_file is not None:
            discovery = discover_from_file(urls_file, site)
        else:
            roots = robot_sitemaps or [site.base_url + p for p in site.sitemap_paths]

            def on_discovered(n: int) -> None:
                self.c.discovered = n
                self._emit("discovered")

            discovery = discover_from_sitemaps(
                self.fetcher, site, cfg, roots, lambda res, err: self._record_aux("sitemap", res, err), on_discovered
            )
        self.writer.flush()
        self.c.discovered = len(discovery.entries)
        self._emit("discovered")

        states = st.load_url_states(self.conn, site.name, self.crawl_id)
        done = st.done_urls(self.conn, self.crawl_id)
        skipped = {"unchanged": 0, "done": 0, "since": 0}
        disallowed = 0
        candidates: list[_Item] = []
        for entry in discovery.entries:
            if since is not None and entry.lastmod is not None and entry.lastmod < since:
                skipped["since"] += 1
                continue
            if not self.robots.can_fetch(entry.loc):
                disallowed += 1
                continue
            state = self._usable(states.get(entry.loc))
            if cfg.use_lastmod and state is not None and state.unchanged_per_sitemap(entry.lastmod):
                skipped["unchanged"] += 1
                continue
            candidates.append(_Item(entry.loc, entry.lastmod, state))
        # The limit applies before dropping finished URLs, so a resumed crawl ends with the
        # same page set as an uninterrupted one.
        if limit is not None:
            candidates = candidates[: max(0, limit)]
        plan = []
        for item in candidates:
            if item.url in done:
                skipped["done"] += 1
            else:
                plan.append(item)
        return discovery, disallowed, plan, skipped

    def _usable(self, state: st.UrlState | None) -> st.UrlState | None:
        """The URL's state, unless its last good body is no longer in the raw store (lost, or
        quarantined as corrupt): then the page is fetched again unconditionally."""
        if state is None or not state.content_sha256 or self.store.exists(self.site.name, state.content_sha256):
            return state
        return None

    def _fetch_all(self, plan: list[_Item]) -> bool:
        cfg = self.cfg
        self._fetch_t0 = self.clock.monotonic()
        items = iter(plan)
        pending: set[Future[tuple[_Item, HttpResult, dict[str, Any] | None]]] = set()
        deferred = False
        last_flush = self.clock.monotonic()
        with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix=f"crawl-{self.site.name}") as pool:
            try:
                while True:
                    while not deferred and len(pending) < 2 * cfg.concurrency:
                        item = next(items, None)
                        if item is None:
                            break
                        pending.add(pool.submit(self._fetch_one, item))
                    if not pending:
                        break
                    done, pending = wait(pending, timeout=cfg.batch_seconds, return_when=FIRST_COMPLETED)
                    for fut in done:
                        item, res, row = fut.result()
                        if row is None:
                            deferred = True
                            self.c.deferred += 1
                            self._emit("deferred", item.url, res.error)
                            continue
                        self.writer.add(row)
                        self._count(row)
                    if self.clock.monotonic() - last_flush >= cfg.batch_seconds:
                        self.writer.flush()
                        last_flush = self.clock.monotonic()
            except BaseException:
                self.fetcher.stopping.set()
                for fut in pending:
                    fut.cancel()
                raise
        if deferred:
            self.c.deferred += sum(1 for _ in items)
        return deferred

    def _count(self, row: dict[str, Any]) -> None:
        c = self.c
        outcome = row["outcome"]
        c.completed += 1
        if outcome == "fetched":
            c.fetched += 1
        elif outcome == "unchanged":
            c.unchanged += 1
        elif outcome == "gone":
            c.gone += 1
        else:
            c.failed += 1
            c.failures.append((row["url"], row["error"] or "failed"))
        self._emit(outcome, row["url"], row["error"])

    def _validate(self, body: bytes) -> str | None:
        if self.site.looks_like_study(body):
            return None
        return "not a trial page (interstitial/challenge/error page served as 200)"

    def _fetch_one(self, item: _Item) -> tuple[_Item, HttpResult, dict[str, Any] | None]:
        """Worker: fetch, store the body, build the row.  Never raises."""
        try:
            return self._fetch_one_unsafe(item)
        except RawStoreWriteError:
            raise  # disk full / read-only store: every page would fail, stop the crawl
        except Exception as exc:  # a bug must not kill the crawl
            now = self.clock.now()
            res = HttpResult(item.url, item.url, None, None, None, None, None, now, 0, 0, f"internal error: {exc!r}")
            return item, res, self._row("page", res, "failed", error=res.error, lastmod=item.lastmod)

    def _fetch_one_unsafe(self, item: _Item) -> tuple[_Item, HttpResult, dict[str, Any] | None]:
        state = item.state
        headers = state.conditional_headers() if state else {}
        res = self.fetcher.fetch(item.url, headers=headers, max_bytes=self.cfg.max_page_bytes, validate=self._validate)
        if res.deferred:
            return item, res, None
        row = lambda outcome, **kw: self._row("page", res, outcome, lastmod=item.lastmod, **kw)  # noqa: E731
        if res.error is None and res.status == 304:
            if state is None or not state.content_sha256:
                return item, res, row("failed", error="304 Not Modified to a request without validators")
            return item, res, row(
                "unchanged",
                sha=state.content_sha256,
                size=0,
                etag=res.etag or state.etag,
                last_modified=res.last_modified or state.last_modified,
            )
        if res.error is None and res.body is not None:
            checkpoint("crawl.fetched")
            stored = self.store.put(self.site.name, res.body)  # object first, row second
            same = state is not None and state.last_ok and state.content_sha256 == stored.sha256
            return item, res, row("unchanged" if same else "fetched", sha=stored.sha256, size=stored.size)
        if res.status in (404, 410) and res.error is not None and res.error.startswith("HTTP"):
            return item, res, row("gone", error=res.error)
        sha = None
        if res.body is not None:
            # A rejected 200 (interstitial) is kept so nothing served is lost; the URL still
            # counts as failed and is retried next run.
            sha = self.store.put(self.site.name, res.body).sha256
        return item, res, row("failed", error=res.error, sha=sha)

