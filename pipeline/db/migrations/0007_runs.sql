-- Run log (pipeline/runlog.py): one row per run of a command that writes the warehouse
-- (trials ingest / run / crawl / reparse, the Dagster assets), so the person watching the
-- pipeline sees what happened.  Operational data, not warehouse contents: these rows differ
-- between two runs on the same input (times, ids), so determinism checks leave them out.
--
-- The 'running' row is committed on its own before any loading starts, and the outcome is
-- written after the load transaction ends, so a load that rolls back (or a process that is
-- killed) still leaves its run visible.  A later run marks 'running' rows whose process is
-- gone as failed (error 'abandoned: ...').
CREATE TABLE runs (
    run_id            VARCHAR PRIMARY KEY,
    command           VARCHAR NOT NULL,   -- ingest, run, crawl, reparse, dagster
    trigger           VARCHAR,            -- cli, or the Dagster run / schedule that started it
    started_at        TIMESTAMP NOT NULL, -- naive UTC, like every timestamp here
    finished_at       TIMESTAMP,
    outcome           VARCHAR NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    error             VARCHAR,            -- one line, for failed runs
    host              VARCHAR,            -- where the process ran, and its id: how a later
    pid               INTEGER,            -- run tells a killed run from one still going
    -- pages: discovered = study URLs found (crawl) or page files read (ingest, run) or stale
    -- pages found (reparse); fetched = new page versions downloaded (crawl only);
    -- unchanged = pages needing no parse (304 / identical body / already loaded);
    -- parsed = pages parsed this run, of which partial and rejected.
    pages_discovered  INTEGER,
    pages_fetched     INTEGER,
    pages_unchanged   INTEGER,
    pages_parsed      INTEGER,
    pages_partial     INTEGER,
    pages_rejected    INTEGER,
    -- trials whose golden rows are new / differ afterwards / no longer exist
    trials_added      INTEGER,
    trials_changed    INTEGER,
    trials_removed    INTEGER,
    -- seconds spent per stage (NULL: the stage did not run)
    crawl_s           DOUBLE,
    parse_s           DOUBLE,
    link_s            DOUBLE,
    load_s            DOUBLE
);

-- Pages a run parsed as rejected or partial, with the reason as it was then (a later re-parse
-- replaces the page row; the log keeps what this run saw).
CREATE TABLE run_pages (
    run_id        VARCHAR NOT NULL,
    page_id       VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,
    parse_status  VARCHAR NOT NULL CHECK (parse_status IN ('partial', 'rejected')),
    parse_error   VARCHAR
);

-- Trials a run added, changed or removed; fields = the trials columns and child tables
-- whose values differ from before the run (empty for added and removed trials).
CREATE TABLE run_changes (
    run_id    VARCHAR NOT NULL,
    trial_id  VARCHAR NOT NULL,
    nct_id    VARCHAR,
    change    VARCHAR NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    fields    VARCHAR[] NOT NULL
);
