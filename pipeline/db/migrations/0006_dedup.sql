-- Deduplication: how pages were linked into trials, the review queue, and where every golden
-- value came from (pipeline/dedup, pipeline/relink.py, pipeline/golden.py).
--
-- No backfill migration is needed: a run finds the stored pages that have no record_links
-- row yet (a warehouse loaded before this migration) and links them like new pages, which
-- also fills link_keys and block_keys for them.  Trial ids they already have are kept.
--
-- No PRIMARY KEYs: these rows are deleted and re-inserted per touched trial inside one load
-- transaction; uniqueness and references are asset checks (pipeline/db/checks.py).

-- Exact link keys of every linkable stored page, so a new batch finds the trials it shares a
-- key with by a join instead of re-reading the warehouse.  key: an NCT ID ('NCT04599543',
-- kinds nct / nct_alias), a registry id ('eudract:2020-001234-56'), the sponsor's own id with
-- the normalized sponsor ('org:zhejiang university|cd123001'), a site's own id
-- ('site:veeva_slug:...').
CREATE TABLE link_keys (
    page_id  VARCHAR NOT NULL,
    kind     VARCHAR NOT NULL CHECK (kind IN ('nct', 'nct_alias', 'secondary_id', 'org_id', 'url')),
    key      VARCHAR NOT NULL
);

-- Blocking keys of every linkable stored page (the fuzzy matcher's candidate generation):
-- pass 'title_word' holds each distinct title word (rarity is counted at query time), the
-- other passes hold the same keys the in-memory blocking uses.
CREATE TABLE block_keys (
    page_id  VARCHAR NOT NULL,
    pass     VARCHAR NOT NULL CHECK (pass IN (
        'title_word', 'title_prefix', 'title_suffix', 'sponsor_criteria', 'criteria')),
    key      VARCHAR NOT NULL
);

-- How each linked page came into its trial.  method: nct (shares an NCT ID), secondary_id
-- (a registry id or the sponsor's own study id with the sponsor), url (a site's own stable
-- id), fuzzy (scored at/above the accept threshold), manual (accepted in review), new (first
-- or only page of its trial).  score: the match weight (log2 odds) of a fuzzy link.
CREATE TABLE record_links (
    page_id          VARCHAR NOT NULL,
    trial_id         VARCHAR NOT NULL,
    method           VARCHAR NOT NULL CHECK (method IN (
        'nct', 'secondary_id', 'url', 'fuzzy', 'manual', 'new')),
    matched_page_id  VARCHAR,  -- the page it was linked through (NULL for new)
    score            DOUBLE,
    explanation      VARCHAR NOT NULL
);

-- Page pairs scored between the reject and the accept threshold: not merged, waiting for
-- `trials review`.  page_a < page_b.
CREATE TABLE link_candidates (
    page_a       VARCHAR NOT NULL,
    page_b       VARCHAR NOT NULL,
    trial_a      VARCHAR NOT NULL,
    trial_b      VARCHAR NOT NULL,
    score        DOUBLE NOT NULL,
    probability  DOUBLE NOT NULL,
    explanation  VARCHAR NOT NULL
);

-- Review decisions, kept across runs and applied by every later run: accept = the two pages
-- are one trial (method manual), reject = never in one trial.  page_a < page_b.
CREATE TABLE link_decisions (
    page_a      VARCHAR NOT NULL,
    page_b      VARCHAR NOT NULL,
    decision    VARCHAR NOT NULL CHECK (decision IN ('accept', 'reject')),
    decided_at  TIMESTAMP NOT NULL,
    note        VARCHAR
);

-- Trial ids retired by a merge, and the trial that carries on (always a current trial_id).
CREATE TABLE trial_id_aliases (
    retired_id  VARCHAR NOT NULL,
    trial_id    VARCHAR NOT NULL,
    retired_at  TIMESTAMP NOT NULL
);

-- Which page each golden value came from: one row per (trial, field) with a value.  field is
-- a trials column or a child table name (conditions, locations, ...).
CREATE TABLE field_sources (
    trial_id  VARCHAR NOT NULL,
    field     VARCHAR NOT NULL,
    page_id   VARCHAR NOT NULL
);

-- Disagreements: for each trials column on which the current versions of a trial's pages
-- show different values, every page's value (as text, the way trial_history writes values).
CREATE TABLE field_conflicts (
    trial_id  VARCHAR NOT NULL,
    field     VARCHAR NOT NULL,
    value     VARCHAR NOT NULL,
    page_id   VARCHAR NOT NULL
);

-- Any trial id ever issued -> the current one (a current id maps to itself).
CREATE OR REPLACE VIEW trial_id_lookup AS
SELECT trial_id AS any_id, trial_id FROM trials
UNION ALL
SELECT retired_id, trial_id FROM trial_id_aliases;
