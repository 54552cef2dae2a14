"""What the crawler needs to know about each source site.

One frozen `CrawlSite` per mirror, in a registry keyed by the same source names
the parser uses (`veeva`, `clinconnect`).  Adding a third mirror is one new entry
here; nothing else in the crawler names a site.  Parsing knowledge (label maps)
lives in `pipeline/sources/`, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str | None:
    """Canonical form used as the crawl key: lower-case scheme/host, no default port, no fragment.

    Returns None for anything that is not an absolute http(s) URL, so junk in a
    sitemap or URL list is dropped instead of crashing the crawl.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        return None  # credentials in a URL are never something we should send
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_netloc(url: str) -> str:
    """host[:port] of a normalized URL (the unit that politeness limits apply to)."""
    return urlsplit(url).netloc


@dataclass(frozen=True, slots=True)
class CrawlSite:
    """Crawl-side description of one mirror site."""

    name: str
    base_url: str
    allowed_hosts: frozenset[str]  # netlocs (host or host:port) we may ever request
    study_path: re.Pattern[str]  # matches the path of a trial page URL
    # A trial page shows at least `min_study_markers` of these words (lower-case bytes,
    # matched case-insensitively in the body).  Anything else served at a study URL
    # (bot challenge, cookie wall, search page) is an interstitial, not a page version.
    study_markers: tuple[bytes, ...] = ()
    min_study_markers: int = 2
    # Child sitemaps whose URL matches one of these are not fetched (e.g. a site's
    # location or blog sitemaps), saving requests on both sides.
    skip_sitemaps: tuple[re.Pattern[str], ...] = ()
    sitemap_paths: tuple[str, ...] = ("/sitemap.xml",)  # tried only if robots.txt lists none
    case_insensitive_key: bool = False  # ClinConnect: NCT ids compare upper-case

    def with_base_url(self, base_url: str | None) -> CrawlSite:
        """The same site served from another origin (a local mirror, staging).

        The override *replaces* the allowed hosts: a crawl pointed at a mirror must
        never fall through to the real site.
        """
        if not base_url:
            return self
        norm = normalize_url(base_url)
        if norm is None:
            raise ValueError(f"base URL must be an absolute http(s) URL: {base_url!r}")
        origin = urlunsplit((urlsplit(norm).scheme, url_netloc(norm), "", "", ""))
        return replace(self, base_url=origin, allowed_hosts=frozenset({url_netloc(norm)}))

    def is_allowed_host(self, url: str) -> bool:
        norm = normalize_url(url)
        return norm is not None and url_netloc(norm) in self.allowed_hosts

    def is_study_url(self, url: str) -> bool:
        """An allowed-host URL whose path is a trial page (no query: avoids crawler traps)."""
        norm = normalize_url(url)
        if norm is None or url_netloc(norm) not in self.allowed_hosts:
            return False
        parts = urlsplit(norm)
        return not parts.query and self.study_path.fullmatch(parts.path) is not None

    def study_key(self, url: str) -> str | None:
        """The site's own id for the trial in a study URL: Veeva slug or ClinConnect NCT id."""
        norm = normalize_url(url)
        if norm is None:
            return None
        m = self.study_path.fullmatch(urlsplit(norm).path)
        if not m:
            return None
        key = m.group("key")
        return key.upper() if self.case_insensitive_key else key

    def looks_like_study(self, body: bytes) -> bool:
        if not self.study_markers:
            return True
        if body.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM: markers are not ASCII bytes
            body = body.decode("utf-16", "replace").encode("utf-8")
        low = body.lower()
        return sum(1 for marker in self.study_markers if marker in low) >= self.min_study_markers

    def skip_sitemap(self, url: str) -> bool:
        return any(p.search(url) for p in self.skip_sitemaps)


VEEVA = CrawlSite(
    name="veeva",
    base_url="https://ctv.veeva.com",
    allowed_hosts=frozenset({"ctv.veeva.com"}),
    # The slug is derived from the title, not the NCT id; any URL-safe path segment.
    study_path=re.compile(r"/study/(?P<key>[A-Za-z0-9._~%-]+)/?"),
    study_markers=(
        b"status and phase",
        b"conditions",
        b"study type",
        b"identifiers",
        b"enrollment",
        b"eligibility",
        b"treatments",
    ),
)

CLINCONNECT = CrawlSite(
    name="clinconnect",
    base_url="https://clinconnect.io",
    allowed_hosts=frozenset({"clinconnect.io"}),
    study_path=re.compile(r"/trials/(?P<key>[Nn][Cc][Tt]\d{8})/?"),
    study_markers=(
        b"launched by",
        b"trial information",
        b"eligibility criteria",
        b"clinconnect summary",
        b"timeline",
        b"trial officials",
    ),
    case_insensitive_key=True,
)

SITES: dict[str, CrawlSite] = {site.name: site for site in (VEEVA, CLINCONNECT)}


def get_site(source: str, base_url: str | None = None) -> CrawlSite:
    try:
        site = SITES[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(sorted(SITES))}") from None
    return site.with_base_url(base_url)
