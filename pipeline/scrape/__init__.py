"""Polite, resumable crawler for the trial mirrors (scrape stage).

    from pipeline.scrape import crawl, CrawlConfig
    result = crawl("veeva", raw_root="raw", conn=conn, config=CrawlConfig(), limit=100)
    for page in result.raw_pages(RawStore("raw")): ...   # -> RawPage for parse/load

Modules: sites (per-site adapters), config, politeness (rate/concurrency/backoff),
http (one GET with retries/redirects/caps), robots, sitemap, discover, state
(DuckDB crawls/fetches), progress, crawler (orchestration).
"""

from pipeline.scrape.config import DEFAULT_USER_AGENT, Clock, CrawlConfig, SystemClock
from pipeline.scrape.crawler import CrawlResult, PageVersion, crawl
from pipeline.scrape.progress import ProgressEvent, TerminalProgress
from pipeline.scrape.robots import RobotsUnreachable
from pipeline.scrape.sites import SITES, CrawlSite, get_site
from pipeline.scrape.state import SchemaMissing, ensure_fetch_schema

__all__ = [
    "DEFAULT_USER_AGENT",
    "SITES",
    "Clock",
    "CrawlConfig",
    "CrawlResult",
    "CrawlSite",
    "PageVersion",
    "ProgressEvent",
    "RobotsUnreachable",
    "SchemaMissing",
    "SystemClock",
    "TerminalProgress",
    "crawl",
    "ensure_fetch_schema",
    "get_site",
]
