-- Crawl log (pipeline/scrape).  The crawler's whole memory lives here: conditional-request
-- validators, sitemap lastmods, which URLs failed and must be retried, and how far an
-- interrupted crawl got.  Rows are append-only; "current state of a URL" = its latest row.
-- IF NOT EXISTS: `python -m pipeline.scrape` may create these before the migration runner.

-- One row per crawl run; finished_at stays NULL while running or after a kill/deferral, and
-- the next crawl of the same source + base_url resumes that crawl_id instead of starting over.
CREATE TABLE IF NOT EXISTS crawls (
    crawl_id     VARCHAR PRIMARY KEY,
    source       VARCHAR NOT NULL,
    base_url     VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,          -- naive UTC, like every timestamp here
    finished_at  TIMESTAMP,
    status       VARCHAR NOT NULL CHECK (status IN ('running', 'finished', 'deferred', 'interrupted'))
);

-- One row per URL per crawl attempt-series (after in-run retries), for robots.txt, sitemaps
-- and pages.  A page URL has at most one successful row per crawl_id.
CREATE TABLE IF NOT EXISTS fetches (
    crawl_id         VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL CHECK (kind IN ('robots', 'sitemap', 'page')),
    url              VARCHAR NOT NULL,        -- as discovered (normalized), the crawl key
    final_url        VARCHAR,                 -- after in-host redirects
    source           VARCHAR NOT NULL,
    requested_at     TIMESTAMP NOT NULL,      -- start of the first attempt
    http_status      INTEGER,                 -- last status seen; NULL = no response
    etag             VARCHAR,
    last_modified    VARCHAR,                 -- Last-Modified header, verbatim
    sitemap_lastmod  TIMESTAMP,               -- <lastmod> the sitemap listed at the time
    content_sha256   VARCHAR,                 -- raw-store object now current for the URL
                                              -- (a 304 repeats the version it confirmed;
                                              -- a rejected interstitial names its kept body)
    bytes            BIGINT,                  -- decoded body bytes read (0 for 304)
    elapsed_ms       INTEGER,                 -- duration of the last attempt
    attempts         INTEGER NOT NULL,        -- requests sent, retries and redirect hops included
    outcome          VARCHAR NOT NULL CHECK (outcome IN ('fetched', 'unchanged', 'gone', 'failed')),
    -- fetched = new page version stored; unchanged = 304 or identical body; gone = 404/410;
    -- failed = error after retries (retried on the next run).
    error            VARCHAR
);
