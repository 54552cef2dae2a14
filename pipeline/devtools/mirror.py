"""A local stand-in for a trial mirror site, with switchable faults, for crawler tests.

    python -m pipeline.devtools.mirror --style veeva --port 8800 --pages tests/fixtures/pages
    python -m pipeline.devtools.mirror --style clinconnect --generate 200 --demo-faults

Serves (on 127.0.0.1 only, stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive):
* trial pages at the site's study URLs (`/study/<slug>` or `/trials/<NCT id>`), with
  ETag/Last-Modified and 304s for If-None-Match / If-Modified-Since, gzip when accepted;
* `/robots.txt` (Disallow prefixes, optional Crawl-delay, Sitemap line);
* `/sitemap_index.xml` (also at `/sitemap.xml`) -> child sitemaps with <lastmod>, served
  alternately as `.xml.gz` files and as `.xml` with Content-Encoding: gzip;
* faults per path: 429 + Retry-After, 503 bursts, slow responses, dropped connections,
  truncated bodies, redirects (in-host or foreign), 404 for removed trials, oversized
  (chunked, no Content-Length) bodies, and a bot-challenge interstitial.
Every request is recorded (path, monotonic + wall time, headers, status) so tests can
check the crawler's politeness from the server's side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import gzip
import hashlib
import html
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Style = Literal["veeva", "clinconnect"]
BASE_LASTMOD = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
INTERSTITIAL = (
    b"<!doctype html><html><head><title>Just a moment...</title></head><body>"
    b"<h1>Checking your browser before accessing the site.</h1>"
    b"<p>Please enable JavaScript and cookies to continue.</p><script>/* challenge */</script>"
    b"</body></html>"
)


@dataclass(slots=True)
class MirrorPage:
    body: bytes
    lastmod: dt.datetime  # aware UTC
    in_sitemap: bool = True

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


@dataclass(slots=True)
class Faults:
    """Per-path misbehaviour.  Counted faults fire that many times, then the path is healthy."""

    rate_limited: dict[str, int] = field(default_factory=dict)  # 429 with Retry-After
    retry_after: str = "1"  # seconds or an HTTP date
    unavailable: dict[str, int] = field(default_factory=dict)  # 503 burst (with Retry-After 0)
    slow: dict[str, float] = field(default_factory=dict)  # seconds before answering
    drop: dict[str, int] = field(default_factory=dict)  # close the socket without a response
    truncate: dict[str, int] = field(default_factory=dict)  # half the declared body, then close
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location (301)
    gone: set[str] = field(default_factory=set)  # removed trials: 404, still in the sitemap
    oversized: dict[str, int] = field(default_factory=dict)  # chunked body of this many bytes
    interstitial: dict[str, int] = field(default_factory=dict)  # bot-challenge page with 200
    delay_all: float = 0.0  # added to every page response


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    t: float  # time.monotonic() when the request line was read
    wall: float  # time.time()
    headers: Mapping[str, str]  # lower-case names
    status: int | None  # None = connection dropped on purpose


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def study_path(style: Style, key: str) -> str:
    return f"/study/{key}" if style == "veeva" else f"/trials/{key}"


def generate_pages(style: Style, n: int, *, start: int = 0) -> dict[str, MirrorPage]:
    """`n` small trial pages showing the labels a reader sees on that site (see
    docs/dev/page-layouts.md).  Deterministic: page i always has the same bytes."""
    pages = {}
    for i in range(start, start + n):
        nct = f"NCT0{5000000 + i:07d}"
        title = f"A Study of Drug X{i} in Adults With Condition {i % 7}"
        lastmod = BASE_LASTMOD + dt.timedelta(minutes=i)
        if style == "veeva":
            body = _veeva_page(title, nct, i)
            path = study_path(style, _slug(title))
        else:
            body = _clinconnect_page(title, nct, i)
            path = study_path(style, nct)
        pages[path] = MirrorPage(body.encode(), lastmod)
    return pages


def _veeva_page(title: str, nct: str, i: int) -> str:
    t = html.escape(title)
    return f"""<!doctype html><html><head><title>{t} | ClinicalTrials.Veeva</title>
<script>window.__noop = true;</script></head><body>
<nav>ClinicalTrials.Veeva <a href="#">Menu</a></nav>
<main><h1>{t}</h1><p>S</p><p>Sponsor {i} Pharma</p>
<h2>Status and phase</h2><p>Enrolling</p><p>Phase {1 + i % 3}</p>
<h2>Conditions</h2><ul><li>Condition {i % 7}</li></ul>
<h2>Treatments</h2><ul><li>Drug: X{i}</li></ul>
<h2>Study type</h2><p>Interventional</p>
<h2>Funder types</h2><p>Industry</p>
<h2>Identifiers</h2><p>{nct}</p><p>X{i}-001</p>
<h2>Details and patient eligibility</h2>
<h3>About</h3><p>This study tests drug X{i}.</p>
<h3>Enrollment</h3><p>{20 + i} estimated patients</p>
<h3>Sex</h3><p>All</p><h3>Ages</h3><p>18 to 75 years old</p>
<h3>Inclusion criteria</h3><ol><li>Adults with condition {i % 7}</li></ol>
<h3>Exclusion criteria</h3><ol><li>Pregnancy</li></ol>
</main><footer>Data sourced from clinicaltrials.gov</footer></body></html>
"""


def _clinconnect_page(title: str, nct: str, i: int) -> str:
    t = html.escape(title)
    return f"""<!doctype html><html><head><title>{t}</title>
<link rel="canonical" href="/trials/{nct}"></head><body>
<h1>{t}</h1><p>Launched by SPONSOR {i} PHARMA · Apr 11, 2024</p>
<h2>Trial Information</h2><p>Current as of June 14, 2025</p><p>Recruiting</p>
<h3>Keywords</h3><ul></ul>
<h3>ClinConnect Summary</h3><p>A plain-language summary.</p>
<h3>Gender</h3><p>ALL</p>
<h3>Eligibility criteria</h3><ul><li>Inclusion Criteria:</li><li>• Adults</li>
<li>Exclusion Criteria:</li><li>• Pregnancy</li></ul>
<h3>Timeline</h3><p>First submit</p><p>Mar 1, 2024</p>
</body></html>
"""


def load_pages(directory: str | Path, style: Style) -> dict[str, MirrorPage]:
    """HTML files of a directory (sorted, recursive) as pages of a `style` site.

    Veeva paths come from the file name (slugified); ClinConnect paths need an NCT id:
    from the file name, else the first one in the page, else a synthetic one.
    """
    pages: dict[str, MirrorPage] = {}
    files = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in (".html", ".htm") and p.is_file())
    for i, file in enumerate(files):
        body = file.read_bytes()
        if style == "veeva":
            key = _slug(file.stem)
        else:
            key = _nct_key(file.name, body)
        path = study_path(style, key)
        while path in pages:  # two files, same key: keep both under distinct URLs
            path = study_path(style, f"{key}-{i}" if style == "veeva" else f"NCT9{(i * 7919) % 10**7:07d}")
        pages[path] = MirrorPage(body, BASE_LASTMOD + dt.timedelta(minutes=i))
    return pages


def corpus_pages(style: Style, limit: int | None = None) -> dict[str, MirrorPage]:
    """Pages rendered from the ClinicalTrials.gov corpus in `style`, markup variants in turn.

    Paths follow the site: `/study/<slug of the title>` on Veeva, `/trials/<NCT>` on
    ClinConnect.  Deterministic: the same corpus gives the same bytes and lastmods.
    """
    from pipeline.devtools.ctgov import load_records
    from pipeline.devtools.render import VARIANTS, default_show_nct, render_page

    pages: dict[str, MirrorPage] = {}
    variants = VARIANTS[style]
    for i, record in enumerate(load_records()[:limit]):
        variant = variants[i % len(variants)]
        page = render_page(record, style, variant,
                           show_nct=default_show_nct(record.nct_id, style, variant))
        path = study_path(style, _slug(record.brief_title or record.nct_id or str(i))
                          if style == "veeva" else (record.nct_id or f"NCT9{i:07d}"))
        if path in pages:
            path = f"{path}-{i}"
        pages[path] = MirrorPage(page.html.encode(), BASE_LASTMOD + dt.timedelta(minutes=i))
    return pages


def _nct_key(name: str, body: bytes) -> str:
    m = re.search(r"NCT\d{8}", name, re.I)
    if m:
        return m.group(0).upper()
    mb = re.search(rb"NCT\d{8}", body)
    if mb:
        return mb.group(0).decode()
    return f"NCT9{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**7:07d}"


class Mirror:
    """The site's content and behaviour; shared by the handler threads (guarded by a lock)."""

    def __init__(
        self,
        style: Style,
        pages: Mapping[str, MirrorPage],
        *,
        disallow: Iterable[str] = (),
        crawl_delay: float | None = None,
        per_sitemap: int = 50,
        include_lastmod: bool = True,
        faults: Faults | None = None,
        extra_sitemap_urls: Iterable[str] = (),
        extra_index_urls: Iterable[str] = (),
        gzip_pages: bool = True,
    ):
        self.style = style
        self.pages = dict(pages)
        self.disallow = tuple(disallow)
        self.crawl_delay = crawl_delay
        self.per_sitemap = per_sitemap
        self.include_lastmod = include_lastmod
        self.faults = faults or Faults()
        self.extra_sitemap_urls = list(extra_sitemap_urls)  # absolute or path; listed as-is
        self.extra_index_urls = list(extra_index_urls)  # more child sitemaps (e.g. on a foreign host)
        self.gzip_pages = gzip_pages
        self.lock = threading.RLock()

    def set_page(self, path: str, body: bytes, lastmod: dt.datetime | None = None) -> None:
        with self.lock:
            self.pages[path] = MirrorPage(body, lastmod or dt.datetime.now(dt.UTC).replace(microsecond=0))

    def take(self, counter: dict[str, int], path: str) -> bool:
        """Consume one occurrence of a counted fault for `path`."""
        with self.lock:
            left = counter.get(path, 0)
            if left <= 0:
                return False
            counter[path] = left - 1
            return True

    def sitemap_paths(self) -> list[str]:
        """Everything the sitemaps list, in order: pages, then any extra URLs."""
        with self.lock:
            listed = [p for p, page in self.pages.items() if page.in_sitemap]
            listed += [p for p in self.faults.gone if p not in self.pages]
            listed += [p for p in self.faults.redirects if p not in self.pages and p not in listed]
            listed += [p for p in self.faults.oversized if p not in self.pages and p not in listed]
            listed += [p for p in self.faults.interstitial if p not in self.pages and p not in listed]
            return listed + self.extra_sitemap_urls


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    mirror: Mirror
    log: list[RequestRecord]
    log_lock: threading.Lock

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        # Clients hanging up (a crawler stopping an oversized body, a killed crawl) are
        # part of the game, not server errors worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms stalls
    server: _Server
    timeout = 30  # idle keep-alive connections end eventually

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass  # the request log replaces stderr chatter

    # -- plumbing --------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _record(self, status: int | None) -> None:
        rec = RequestRecord(
            self.command,
            self._path,
            self._t,
            self._wall,
            {k.lower(): v for k, v in self.headers.items()},
            status,
        )
        with self.server.log_lock:
            self.server.log.append(rec)

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self._record(status)
        self.send_response(status)
        hdrs = dict(headers or {})
        hdrs.setdefault("Content-Type", "text/html; charset=utf-8")
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _accepts_gzip(self) -> bool:
        return "gzip" in (self.headers.get("Accept-Encoding") or "").lower()

    # -- routes ----------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._t, self._wall = time.monotonic(), time.time()
        self._path = urlsplit(self.path).path
        mirror = self.server.mirror
        path = self._path
        try:
            if self._fault(mirror, path):
                return
            if path == "/robots.txt":
                return self._robots()
            if path in ("/sitemap_index.xml", "/sitemap.xml"):
                return self._sitemap_index()
            m = re.fullmatch(r"/sitemaps/trials-(\d+)\.xml(\.gz)?", path)
            if m:
                return self._child_sitemap(int(m.group(1)), bool(m.group(2)))
            self._page(mirror, path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _robots(self) -> None:
        mirror = self.server.mirror
        lines = ["User-agent: *"]
        lines += [f"Disallow: {d}" for d in mirror.disallow]
        if mirror.crawl_delay is not None:
            lines.append(f"Crawl-delay: {mirror.crawl_delay:g}")
        lines += ["", f"Sitemap: {self.base}/sitemap_index.xml", ""]
        self._send(200, "\n".join(lines).encode(), {"Content-Type": "text/plain"})

    def _chunks(self) -> list[list[str]]:
        listed = self.server.mirror.sitemap_paths()
        size = max(1, self.server.mirror.per_sitemap)
        return [listed[i : i + size] for i in range(0, len(listed), size)] or [[]]

    def _sitemap_index(self) -> None:
        mirror = self.server.mirror
        parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
        for i, _ in enumerate(self._chunks()):
            ext = ".xml.gz" if i % 2 == 0 else ".xml"
            parts.append(f"<sitemap><loc>{self.base}/sitemaps/trials-{i}{ext}</loc>")
            if mirror.include_lastmod:
                parts.append(f"<lastmod>{BASE_LASTMOD.isoformat()}</lastmod>")
            parts.append("</sitemap>")
        for url in mirror.extra_index_urls:
            parts.append(f"<sitemap><loc>{html.escape(url)}</loc></sitemap>")
        parts.append("</sitemapindex>")
        self._send(200, "\n".join(parts).encode(), {"Content-Type": "application/xml"})

    def _child_sitemap(self, index: int, as_gz_file: bool) -> None:
        mirror = self.server.mirror
        chunks = self._chunks()
        if index >= len(chunks):
            return self._send(404, b"no such sitemap")
        parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
        for path in chunks[index]:
            loc = path if "://" in path else self.base + path
            parts.append(f"<url><loc>{html.escape(loc)}</loc>")
            page = mirror.pages.get(path)
            if mirror.include_lastmod and page is not None:
                parts.append(f"<lastmod>{page.lastmod.isoformat()}</lastmod>")
            parts.append("</url>")
        parts.append("</urlset>")
        xml = "\n".join(parts).encode()
        if as_gz_file:
            self._send(200, gzip.compress(xml, mtime=0), {"Content-Type": "application/x-gzip"})
        elif self._accepts_gzip():
            headers = {"Content-Type": "application/xml", "Content-Encoding": "gzip"}
            self._send(200, gzip.compress(xml, mtime=0), headers)
        else:
            self._send(200, xml, {"Content-Type": "application/xml"})

    def _fault(self, mirror: Mirror, path: str) -> bool:
        """Faults that can hit any path (robots.txt and sitemaps too); True if one fired."""
        f = mirror.faults
        delay = f.slow.get(path, 0.0) + (f.delay_all if path.startswith(("/study/", "/trials/")) else 0.0)
        if delay:
            time.sleep(delay)
        if mirror.take(f.drop, path):
            self._record(None)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if mirror.take(f.rate_limited, path):
            self._send(429, b"slow down", {"Retry-After": f.retry_after})
            return True
        if mirror.take(f.unavailable, path):
            self._send(503, b"unavailable", {"Retry-After": "0"})
            return True
        return False

    def _page(self, mirror: Mirror, path: str) -> None:
        f = mirror.faults
        if path in f.redirects:
            return self._send(301, b"", {"Location": f.redirects[path]})
        if path in f.gone:
            return self._send(404, b"<h1>Trial not found</h1>")
        if path in f.oversized:
            return self._oversized(f.oversized[path])
        if mirror.take(f.interstitial, path) or (path in f.interstitial and path not in mirror.pages):
            return self._send(200, INTERSTITIAL)
        with mirror.lock:
            page = mirror.pages.get(path)
        if page is None:
            return self._send(404, b"<h1>Not found</h1>")
        last_modified = email.utils.format_datetime(page.lastmod.astimezone(dt.UTC), usegmt=True)
        validators = {"ETag": page.etag, "Last-Modified": last_modified}
        if self._not_modified(page):
            return self._send(304, b"", validators)
        if mirror.take(f.truncate, path):
            self._record(200)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page.body)))
            self.end_headers()
            self.wfile.write(page.body[: len(page.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mirror.gzip_pages and self._accepts_gzip():
            headers = {**validators, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return self._send(200, gzip.compress(page.body, mtime=0), headers)
        self._send(200, page.body, validators)

    def _not_modified(self, page: MirrorPage) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return page.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            return page.lastmod.replace(microsecond=0) <= since
        return False

    def _oversized(self, size: int) -> None:
        # Chunked with no Content-Length, so only a streaming size cap can stop it.
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b"<p>" + b"x" * 65_530 + b"</p>"
        sent = 0
        try:
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class MirrorServer:
    """Context manager running a `Mirror` on 127.0.0.1 in a background thread."""

    def __init__(self, mirror: Mirror, *, port: int = 0):
        self.mirror = mirror
        self._httpd = _Server(("127.0.0.1", port), _Handler)  # loopback only, by design
        self._httpd.mirror = mirror
        self._httpd.log = []
        self._httpd.log_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RequestRecord]:
        with self._httpd.log_lock:
            return list(self._httpd.log)

    def clear_requests(self) -> None:
        with self._httpd.log_lock:
            self._httpd.log.clear()

    def start(self) -> MirrorServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_faults(pages: Mapping[str, MirrorPage], style: Style) -> tuple[Faults, tuple[str, ...]]:
    """A representative fault on a few pages, for manual runs (`--demo-faults`)."""
    paths = list(pages)
    pick = lambda i: paths[i % len(paths)]  # noqa: E731
    prefix = "/study/private-" if style == "veeva" else "/trials/NCT99"
    faults = Faults(
        rate_limited={pick(1): 1},
        unavailable={pick(2): 2},
        slow={pick(3): 1.5},
        drop={pick(4): 1},
        truncate={pick(5): 1},
        interstitial={pick(6): 1},
        redirects={study_path(style, "moved" if style == "veeva" else "NCT09999998"): pick(0)},
        gone={study_path(style, "removed-trial" if style == "veeva" else "NCT09999999")},
        oversized={study_path(style, "huge" if style == "veeva" else "NCT09999997"): 6_000_000},
    )
    return faults, (prefix,)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pipeline.devtools.mirror", description=__doc__.splitlines()[0])
    p.add_argument("--style", choices=("veeva", "clinconnect"), default="veeva")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--pages", help="directory of HTML pages to serve")
    p.add_argument("--generate", type=int, default=0, help="also serve N generated trial pages")
    p.add_argument("--corpus", type=int, default=None, metavar="N",
                   help="serve N pages rendered from the CT.gov corpus (default: all, when no --pages)")
    p.add_argument("--crawl-delay", type=float)
    p.add_argument("--disallow", action="append", default=[], help="robots.txt Disallow prefix (repeatable)")
    p.add_argument("--per-sitemap", type=int, default=50)
    p.add_argument("--demo-faults", action="store_true")
    args = p.parse_args(argv)
    pages: dict[str, MirrorPage] = {}
    if args.pages:
        pages.update(load_pages(args.pages, args.style))
    if args.corpus is not None or not (pages or args.generate):
        pages.update(corpus_pages(args.style, args.corpus))
    if args.generate:
        pages.update(generate_pages(args.style, args.generate))
    faults, disallow = (demo_faults(pages, args.style) if args.demo_faults else (Faults(), ()))
    mirror = Mirror(
        args.style, pages, disallow=[*disallow, *args.disallow], crawl_delay=args.crawl_delay,
        per_sitemap=args.per_sitemap, faults=faults,
    )
    server = MirrorServer(mirror, port=args.port)
    print(f"{args.style} mirror with {len(pages)} pages at {server.base_url}  (Ctrl-C stops)", flush=True)
    try:
        server._httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
