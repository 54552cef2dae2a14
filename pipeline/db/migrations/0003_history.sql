-- History and presence: what changed on a trial and when, and whether its pages are still
-- published.  Both are derived from the page versions (pages.fetched_at) and the crawl log
-- (fetches) by pipeline/db/history.py; 0004_backfill_history.py fills them for warehouses
-- loaded before this migration.

-- `trials` is rebuilt rather than ALTERed: DuckDB 2.0 cannot replay an `ADD COLUMN` on a
-- table whose CHECK constraints call list functions (list_has_all) from its WAL without
-- downloading an extension, so a process killed before the next checkpoint would leave a
-- warehouse nobody can open offline.  Later migrations: same rule.
--
-- When a trial was first and last seen on a mirror, and when a tracked field last changed
-- (= first_seen_at for a trial that never changed).  removed_from_source: every URL of the
-- trial answered 404/410 at its latest fetch (fetches.outcome = 'gone'); removed_at is when
-- that was first seen.  Removed trials are kept, never deleted.
CREATE TABLE trials_v3 (
    trial_id                 VARCHAR PRIMARY KEY,
    nct_id                   VARCHAR,
    brief_title              VARCHAR,
    official_title           VARCHAR,
    acronym                  VARCHAR,
    lead_sponsor             VARCHAR,
    overall_status           VARCHAR CHECK (overall_status IN (
        'RECRUITING', 'NOT_YET_RECRUITING', 'ACTIVE_NOT_RECRUITING', 'COMPLETED',
        'ENROLLING_BY_INVITATION', 'SUSPENDED', 'TERMINATED', 'WITHDRAWN', 'UNKNOWN',
        'AVAILABLE', 'NO_LONGER_AVAILABLE', 'TEMPORARILY_NOT_AVAILABLE',
        'APPROVED_FOR_MARKETING', 'WITHHELD')),
    phases                   VARCHAR[] CHECK (list_has_all(
        ['EARLY_PHASE1', 'PHASE1', 'PHASE2', 'PHASE3', 'PHASE4', 'NA'], phases)),
    study_type               VARCHAR CHECK (study_type IN (
        'INTERVENTIONAL', 'OBSERVATIONAL', 'EXPANDED_ACCESS')),
    enrollment               INTEGER,
    enrollment_type          VARCHAR CHECK (enrollment_type IN ('ACTUAL', 'ESTIMATED')),
    sex                      VARCHAR CHECK (sex IN ('ALL', 'FEMALE', 'MALE')),
    min_age                  VARCHAR,
    max_age                  VARCHAR,
    min_age_years            DOUBLE,
    max_age_years            DOUBLE,
    healthy_volunteers       BOOLEAN,
    brief_summary            VARCHAR,
    detailed_description     VARCHAR,
    primary_purpose          VARCHAR CHECK (primary_purpose IN (
        'TREATMENT', 'PREVENTION', 'DIAGNOSTIC', 'ECT', 'SUPPORTIVE_CARE', 'SCREENING',
        'HEALTH_SERVICES_RESEARCH', 'BASIC_SCIENCE', 'DEVICE_FEASIBILITY', 'OTHER')),
    allocation               VARCHAR CHECK (allocation IN ('RANDOMIZED', 'NON_RANDOMIZED', 'NA')),
    intervention_model       VARCHAR CHECK (intervention_model IN (
        'SINGLE_GROUP', 'PARALLEL', 'CROSSOVER', 'FACTORIAL', 'SEQUENTIAL')),
    masking                  VARCHAR CHECK (masking IN (
        'NONE', 'SINGLE', 'DOUBLE', 'TRIPLE', 'QUADRUPLE')),
    start_date               DATE,
    primary_completion_date  DATE,
    completion_date          DATE,
    first_submitted_date     DATE,
    last_update_date         DATE,
    funder_types             VARCHAR[],
    sources                  VARCHAR[],  -- sites the trial's pages came from
    page_count               INTEGER,
    best_page_id             VARCHAR,    -- the freshest page; its values win the merge
    first_seen_at            TIMESTAMP,
    last_seen_at             TIMESTAMP,
    last_changed_at          TIMESTAMP,
    removed_from_source      BOOLEAN DEFAULT false,
    removed_at               TIMESTAMP
);
INSERT INTO trials_v3 BY NAME SELECT * FROM trials;
DROP TABLE trials;
ALTER TABLE trials_v3 RENAME TO trials;

-- One row per change of a tracked field of a trial's golden record.  The first observation of
-- a trial writes no row (trials.first_seen_at records it), so old_value NULL means "the field
-- was empty before", never "first seen".  observed_at = fetched_at of the page version that
-- showed the new value; page_id = that version.  Values are text: dates ISO, phases
-- comma-joined codes ('PHASE1,PHASE2'), numbers in decimal.
CREATE TABLE trial_history (
    trial_id     VARCHAR NOT NULL,
    field        VARCHAR NOT NULL CHECK (field IN (
        'overall_status', 'phases', 'enrollment', 'enrollment_type', 'start_date',
        'primary_completion_date', 'completion_date', 'lead_sponsor', 'brief_title',
        'official_title')),
    old_value    VARCHAR,
    new_value    VARCHAR,
    observed_at  TIMESTAMP NOT NULL,
    page_id      VARCHAR
);

-- --- analyst views ---------------------------------------------------------------------

-- One line per trial with its lists folded in.
CREATE OR REPLACE VIEW trial_overview AS
WITH other_ids AS (
    SELECT trial_id, list(id_value ORDER BY position) AS other_ids
    FROM identifiers WHERE id_type <> 'nct' GROUP BY trial_id
), conds AS (
    SELECT trial_id, list(name ORDER BY position) AS conditions FROM conditions GROUP BY trial_id
), ints AS (
    SELECT trial_id, list(name ORDER BY position) AS interventions,
           list_sort(list_distinct(list(intervention_type))) AS intervention_types
    FROM interventions GROUP BY trial_id
), places AS (
    SELECT trial_id, list_sort(list_distinct(list(country))) AS countries,
           count(*) AS location_count
    FROM locations GROUP BY trial_id
)
SELECT
    t.trial_id, t.nct_id, coalesce(o.other_ids, []) AS other_ids, t.acronym, t.brief_title,
    t.lead_sponsor, t.overall_status, t.phases, t.study_type,
    coalesce(c.conditions, []) AS conditions, coalesce(i.interventions, []) AS interventions,
    coalesce(i.intervention_types, []) AS intervention_types,
    t.enrollment, t.enrollment_type, t.sex, t.min_age, t.max_age, t.min_age_years,
    t.max_age_years, t.healthy_volunteers, coalesce(p.countries, []) AS countries,
    coalesce(p.location_count, 0) AS location_count,
    t.start_date, t.primary_completion_date, t.completion_date, t.last_update_date,
    t.sources, t.page_count, t.first_seen_at, t.last_seen_at, t.last_changed_at,
    t.removed_from_source
FROM trials t
LEFT JOIN other_ids o USING (trial_id)
LEFT JOIN conds c USING (trial_id)
LEFT JOIN ints i USING (trial_id)
LEFT JOIN places p USING (trial_id);

-- Changes of the last 30 days before the warehouse's latest observation (not before today:
-- the answer must not depend on when it is asked), newest first.  Removals from the source
-- appear as field 'removed_from_source'.
CREATE OR REPLACE VIEW recent_changes AS
WITH changes AS (
    SELECT trial_id, field, old_value, new_value, observed_at, page_id FROM trial_history
    UNION ALL
    SELECT trial_id, 'removed_from_source', 'false', 'true', removed_at, NULL
    FROM trials WHERE removed_from_source AND removed_at IS NOT NULL
), latest AS (
    SELECT greatest(
        (SELECT max(fetched_at) FROM pages),
        (SELECT max(requested_at) FROM fetches WHERE kind = 'page')) AS as_of
)
SELECT c.observed_at, t.nct_id, c.trial_id, t.brief_title, c.field, c.old_value, c.new_value,
       p.source, c.page_id
FROM changes c
CROSS JOIN latest l
JOIN trials t USING (trial_id)
LEFT JOIN pages p ON p.page_id = c.page_id
WHERE c.observed_at > l.as_of - INTERVAL 30 DAY
ORDER BY c.observed_at DESC, t.nct_id, c.trial_id, c.field;

-- Trials recruiting now (status RECRUITING and still published), with a way to reach them.
CREATE OR REPLACE VIEW recruiting_trials AS
WITH central AS (
    SELECT trial_id, arg_min(name, position) AS contact_name,
           arg_min(phone, position) AS contact_phone, arg_min(email, position) AS contact_email
    FROM contacts WHERE role = 'central_contact' GROUP BY trial_id
), recruiting_sites AS (
    SELECT trial_id, list_sort(list_distinct(list(country))) AS recruiting_countries
    FROM locations WHERE status = 'RECRUITING' GROUP BY trial_id
)
SELECT o.trial_id, o.nct_id, o.brief_title, o.lead_sponsor, o.phases, o.conditions,
       o.interventions, o.enrollment, o.sex, o.min_age, o.max_age, o.min_age_years,
       o.max_age_years, o.countries, coalesce(r.recruiting_countries, []) AS recruiting_countries,
       c.contact_name, c.contact_phone, c.contact_email, o.start_date, o.last_seen_at, o.sources
FROM trial_overview o
LEFT JOIN central c USING (trial_id)
LEFT JOIN recruiting_sites r USING (trial_id)
WHERE o.overall_status = 'RECRUITING' AND NOT coalesce(o.removed_from_source, false);
