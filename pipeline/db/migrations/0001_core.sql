-- Core warehouse schema: bronze page log, silver parsed records, golden trial tables.
-- Enumerated columns carry CHECK constraints with the ClinicalTrials.gov API v2 codes of
-- pipeline/vocab.py (CODES); tests/test_db_schema.py keeps the two in step.
-- Child tables reference trials(trial_id) by value only: DuckDB foreign keys would block the
-- delete-and-reinsert of a trial inside one load transaction, so orphans are an asset check.

-- One row per distinct page version (same URL + same bytes = same page_id).
CREATE TABLE pages (
    page_id         VARCHAR PRIMARY KEY,
    source          VARCHAR NOT NULL CHECK (source IN ('veeva', 'clinconnect', 'unknown')),
    url             VARCHAR NOT NULL,
    content_sha256  VARCHAR,
    fetched_at      TIMESTAMP,
    trial_id        VARCHAR,  -- NULL for rejected pages
    parse_status    VARCHAR NOT NULL CHECK (parse_status IN ('ok', 'partial', 'rejected')),
    parse_error     VARCHAR,
    warnings        VARCHAR[],
    parser_version  VARCHAR
);

-- Silver: each ok/partial page's TrialRecord as JSON (pipeline/serialize.py), so golden
-- tables can be rebuilt without re-parsing.
CREATE TABLE page_records (
    page_id  VARCHAR PRIMARY KEY,
    record   JSON NOT NULL
);

-- Golden: one row per trial, merged from all of its pages (pipeline/link.py).
CREATE TABLE trials (
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
    best_page_id             VARCHAR     -- the freshest page; its values win the merge
);

-- Child tables: `position` is the 1-based order the page listed the items in.
CREATE TABLE identifiers (
    trial_id  VARCHAR NOT NULL,
    position  INTEGER NOT NULL,
    id_type   VARCHAR NOT NULL,
    id_value  VARCHAR NOT NULL
);

CREATE TABLE conditions (
    trial_id  VARCHAR NOT NULL,
    position  INTEGER NOT NULL,
    name      VARCHAR NOT NULL
);

CREATE TABLE keywords (
    trial_id  VARCHAR NOT NULL,
    position  INTEGER NOT NULL,
    keyword   VARCHAR NOT NULL
);

CREATE TABLE interventions (
    trial_id           VARCHAR NOT NULL,
    position           INTEGER NOT NULL,
    intervention_type  VARCHAR CHECK (intervention_type IN (
        'BEHAVIORAL', 'BIOLOGICAL', 'COMBINATION_PRODUCT', 'DEVICE', 'DIAGNOSTIC_TEST',
        'DIETARY_SUPPLEMENT', 'DRUG', 'GENETIC', 'PROCEDURE', 'RADIATION', 'OTHER')),
    name               VARCHAR NOT NULL,
    description        VARCHAR
);

CREATE TABLE arms (
    trial_id       VARCHAR NOT NULL,
    position       INTEGER NOT NULL,
    label          VARCHAR NOT NULL,
    arm_type       VARCHAR CHECK (arm_type IN (
        'EXPERIMENTAL', 'ACTIVE_COMPARATOR', 'PLACEBO_COMPARATOR', 'SHAM_COMPARATOR',
        'NO_INTERVENTION', 'OTHER')),
    description    VARCHAR,
    interventions  VARCHAR[]  -- "Drug: Name" as the page lists them
);

-- The arms' intervention lines, one row each; type/name split when the line is "Type: Name".
CREATE TABLE arm_interventions (
    trial_id           VARCHAR NOT NULL,
    arm_position       INTEGER NOT NULL,
    arm_label          VARCHAR NOT NULL,
    position           INTEGER NOT NULL,
    intervention       VARCHAR NOT NULL,
    intervention_type  VARCHAR CHECK (intervention_type IN (
        'BEHAVIORAL', 'BIOLOGICAL', 'COMBINATION_PRODUCT', 'DEVICE', 'DIAGNOSTIC_TEST',
        'DIETARY_SUPPLEMENT', 'DRUG', 'GENETIC', 'PROCEDURE', 'RADIATION', 'OTHER')),
    intervention_name  VARCHAR
);

CREATE TABLE criteria (
    trial_id        VARCHAR NOT NULL,
    criterion_type  VARCHAR NOT NULL CHECK (criterion_type IN ('inclusion', 'exclusion')),
    ordinal         INTEGER NOT NULL,
    parent_ordinal  INTEGER,
    text            VARCHAR NOT NULL
);

CREATE TABLE contacts (
    trial_id     VARCHAR NOT NULL,
    position     INTEGER NOT NULL,
    role         VARCHAR NOT NULL CHECK (role IN (
        'central_contact', 'overall_official', 'site_contact')),
    name         VARCHAR NOT NULL,
    credentials  VARCHAR,
    affiliation  VARCHAR,
    phone        VARCHAR,
    email        VARCHAR,
    title        VARCHAR
);

CREATE TABLE locations (
    trial_id  VARCHAR NOT NULL,
    position  INTEGER NOT NULL,
    facility  VARCHAR,
    city      VARCHAR,
    state     VARCHAR,
    country   VARCHAR,
    status    VARCHAR CHECK (status IN (
        'RECRUITING', 'NOT_YET_RECRUITING', 'ACTIVE_NOT_RECRUITING', 'COMPLETED',
        'ENROLLING_BY_INVITATION', 'SUSPENDED', 'TERMINATED', 'WITHDRAWN', 'UNKNOWN',
        'AVAILABLE', 'NO_LONGER_AVAILABLE', 'TEMPORARILY_NOT_AVAILABLE',
        'APPROVED_FOR_MARKETING', 'WITHHELD'))
);
