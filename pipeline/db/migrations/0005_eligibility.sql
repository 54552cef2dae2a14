-- Structured eligibility and cell-therapy profiles.
--
-- Derived data: pipeline/db/profiles.py (refresh_profiles) computes these tables from the
-- golden tables (trials, criteria, interventions) after every load, per trial, and records in
-- profile_state which inputs and extractor versions produced them, so a trial whose criteria,
-- interventions or texts changed -- or rows made by an older extractor -- are recomputed on the
-- next run.  The loader never writes them.  docs/matching.md explains how to query them.
--
-- Sign convention (pipeline/eligibility/model.py): a constraint row states the range its text
-- describes.  negated = false: the patient's value must lie inside; negated = true: a value
-- inside excludes (every exclusion-criterion row, and "No chemotherapy within 4 weeks").  A row
-- with a condition applies only to patients in that subgroup/phase/cohort (or names the
-- measurement method: 'flow cytometry', 'immunohistochemistry', 'morphology'); rows of one item
-- sharing alt_group are alternatives (meeting one satisfies all).

-- One row per structured bound of a criterion item; (trial_id, criterion_type, ordinal) is the
-- criteria row it comes from, `position` its order within the item.
CREATE TABLE eligibility_constraints (
    trial_id         VARCHAR NOT NULL,
    criterion_type   VARCHAR NOT NULL CHECK (criterion_type IN ('inclusion', 'exclusion')),
    ordinal          INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    variable         VARCHAR NOT NULL,  -- pipeline.eligibility.VARIABLES
    lower            DOUBLE,
    lower_inclusive  BOOLEAN,
    upper            DOUBLE,
    upper_inclusive  BOOLEAN,
    unit             VARCHAR,           -- years, days, xULN, mg/dL, 10^9/L, %, ms, positive, ...
    negated          BOOLEAN NOT NULL,
    text             VARCHAR NOT NULL,  -- the span of the criterion text that states it
    condition        VARCHAR,
    antigen          VARCHAR,           -- antigen_expression rows: CD19, CD123, CLEC12A, ...
    alt_group        INTEGER
);

-- Exclusion flags: the item keeps out patients with the flag (pipeline.eligibility.FLAGS).
CREATE TABLE eligibility_flags (
    trial_id        VARCHAR NOT NULL,
    criterion_type  VARCHAR NOT NULL CHECK (criterion_type IN ('inclusion', 'exclusion')),
    ordinal         INTEGER NOT NULL,
    flag            VARCHAR NOT NULL
);

-- One row per listed intervention (therapy_ordinal = interventions.position), or one
-- synthesized from title and summary (intervention_name NULL) for a page that lists none but
-- is plainly about a cell therapy.  modality: CAR-T, CAR-NK, NK, TCR-T, TIL or other.
CREATE TABLE therapies (
    trial_id           VARCHAR NOT NULL,
    therapy_ordinal    INTEGER NOT NULL,
    intervention_type  VARCHAR,
    intervention_name  VARCHAR,
    modality           VARCHAR NOT NULL,
    targets            VARCHAR[] NOT NULL,  -- canonical antigens ('CD123', 'CLEC12A', ...)
    cell_source        VARCHAR[] NOT NULL,  -- autologous, allogeneic, cord blood, iPSC, ...
    engineering        VARCHAR[] NOT NULL,  -- 4-1BB, CD28, IL-15, safety switch, ...
    infusion_schedule  VARCHAR[] NOT NULL,  -- infusion days: ['D0', 'D7']
    escalation_design  VARCHAR[] NOT NULL   -- 3+3, accelerated_titration, BOIN, mTPI, i3+3, CRM
);

-- Cell doses of a therapy, lowest first (level 1).  value in cells (per kg when per_kg).
CREATE TABLE dose_levels (
    trial_id         VARCHAR NOT NULL,
    therapy_ordinal  INTEGER NOT NULL,
    level            INTEGER NOT NULL,
    value            DOUBLE NOT NULL,
    unit             VARCHAR NOT NULL,  -- cells/kg, cells/m2 or cells
    per_kg           BOOLEAN NOT NULL,
    description      VARCHAR            -- the page's words for the first mention
);

-- Each trial's age limits and where they come from.  'page': the page's own age field
-- (trials.min_age / max_age, converted to years); 'criteria': the page shows no age field and
-- the eligibility criteria state one (an unconditioned age bound, inclusion "18-70 years" or
-- exclusion "age > 75") -- refresh_profiles then also writes it into trials.min_age_years /
-- max_age_years, which the loader leaves NULL.  NULL source: no limit known on that side.
-- criteria_*: what the criteria state, whether or not the page has its own field.
CREATE TABLE trial_ages (
    trial_id                VARCHAR PRIMARY KEY,
    min_age_years           DOUBLE,
    max_age_years           DOUBLE,
    min_age_source          VARCHAR CHECK (min_age_source IN ('page', 'criteria')),
    max_age_source          VARCHAR CHECK (max_age_source IN ('page', 'criteria')),
    criteria_min_age_years  DOUBLE,
    criteria_max_age_years  DOUBLE
);

-- What each trial's profile rows were computed from: a digest of the inputs (criteria,
-- interventions, title, summary, description) and the extractor versions.  A trial missing
-- here, or whose digest or versions differ, is recomputed by the next refresh.
CREATE TABLE profile_state (
    trial_id           VARCHAR PRIMARY KEY,
    input_hash         UBIGINT NOT NULL,
    extractor_version  VARCHAR NOT NULL,  -- pipeline.eligibility.EXTRACTOR_VERSION
    profiler_version   VARCHAR NOT NULL   -- pipeline.therapy.PROFILER_VERSION
);

-- --- readable rules ---------------------------------------------------------------------

-- A constraint as a short phrase: 'ecog ≤ 1', 'age 18–70 years', 'not creatinine > 2.5 mg/dL',
-- 'CD123 positive', 'CD7 ≥ 70 %'.
CREATE OR REPLACE MACRO eligibility_rule_text(variable, lower, lower_inclusive, upper, upper_inclusive, unit,
                                              negated, antigen) AS
    CASE WHEN negated THEN 'not ' ELSE '' END
    || CASE WHEN variable = 'antigen_expression' THEN coalesce(antigen, 'antigen') ELSE variable END
    || CASE
        WHEN lower IS NOT NULL AND upper IS NOT NULL AND lower = upper THEN ' = ' || printf('%g', lower)
        WHEN lower IS NOT NULL AND upper IS NOT NULL THEN
            ' ' || CASE WHEN lower_inclusive THEN '' ELSE '>' END || printf('%g', lower) || '–'
            || CASE WHEN upper_inclusive THEN '' ELSE '<' END || printf('%g', upper)
        WHEN lower IS NOT NULL THEN CASE WHEN lower_inclusive THEN ' ≥ ' ELSE ' > ' END || printf('%g', lower)
        WHEN upper IS NOT NULL THEN CASE WHEN upper_inclusive THEN ' ≤ ' ELSE ' < ' END || printf('%g', upper)
        ELSE ''
    END
    || CASE WHEN unit IS NULL THEN '' ELSE ' ' || unit END;

-- Every constraint with its trial and a readable rule.
CREATE OR REPLACE VIEW eligibility_rules AS
SELECT t.nct_id, c.trial_id, t.overall_status, c.criterion_type, c.ordinal, c.position,
       eligibility_rule_text(c.variable, c.lower, c.lower_inclusive, c.upper, c.upper_inclusive, c.unit,
                             c.negated, c.antigen) AS rule,
       c.variable, c.lower, c.lower_inclusive, c.upper, c.upper_inclusive, c.unit, c.negated,
       c.condition, c.antigen, c.alt_group, c.text
FROM eligibility_constraints c
JOIN trials t USING (trial_id);

-- Cell therapies with their doses (one row per dose level; a therapy without doses once).
CREATE OR REPLACE VIEW therapy_doses AS
SELECT t.nct_id, th.trial_id, t.brief_title, t.overall_status, th.therapy_ordinal,
       th.intervention_name, th.modality, th.targets, th.cell_source, th.engineering,
       th.infusion_schedule, th.escalation_design, d.level, d.value, d.unit, d.per_kg, d.description
FROM therapies th
JOIN trials t USING (trial_id)
LEFT JOIN dose_levels d ON d.trial_id = th.trial_id AND d.therapy_ordinal = th.therapy_ordinal;

-- --- matching a patient ------------------------------------------------------------------
--
-- FROM match_patient_rules(age := 72, ecog := 2, measures := MAP {'creatinine|xULN': 1.8})
-- One row per rule of every candidate trial (recruiting and still published, or any status
-- with all_statuses := true) with the rule's verdict for the patient: admits true (the
-- patient meets it), false (it excludes the patient), NULL (not checked: the patient's value
-- is unknown).  Alternatives of one criterion (alt_group) are one rule, met when any is met.
--
-- Patient parameters (all optional):
--   age, ecog            numbers (years; ECOG score)
--   measures             MAP(VARCHAR, DOUBLE) 'variable|unit' -> value, in the constraint
--                        units: 'creatinine|xULN', 'creatinine|mg/dL', 'platelets|10^9/L',
--                        'karnofsky', 'life_expectancy|days', 'washout_chemotherapy|days', ...
--   condition_regex      the trial's conditions, keywords or title must match (case-insensitive)
--   condition_label      how to name that condition in explanations (default: the regex)
--   antigens             VARCHAR[]: antigens the tumour expresses; any antigen not listed
--                        counts as not expressed (a required one excludes, and a cell therapy
--                        aimed only at other antigens excludes)
--   has_flags            VARCHAR[]: the patient has these (pipeline.eligibility.FLAGS)
--
-- Rule kinds: 'criterion' (eligibility_constraints; rows conditioned on a subgroup, phase or
-- cohort are left out: the patient is assumed to be in none), 'page age' (the page's own age
-- limits), 'flag', 'condition', 'target'.
CREATE OR REPLACE MACRO match_patient_rules(age := NULL, ecog := NULL, measures := NULL,
                                            condition_regex := NULL, condition_label := NULL,
                                            antigens := NULL, has_flags := NULL,
                                            all_statuses := false) AS TABLE
WITH candidates AS (
    SELECT trial_id, nct_id, brief_title, overall_status, min_age, max_age
    FROM trials
    WHERE CAST(all_statuses AS BOOLEAN)
       OR (overall_status = 'RECRUITING' AND NOT coalesce(removed_from_source, false))
), patient AS (
    SELECT 'age' AS variable, 'years' AS unit, CAST(age AS DOUBLE) AS value WHERE age IS NOT NULL
    UNION ALL
    SELECT 'ecog', NULL, CAST(ecog AS DOUBLE) WHERE ecog IS NOT NULL
    UNION ALL
    SELECT split_part(e.key, '|', 1), nullif(split_part(e.key, '|', 2), ''), CAST(e.value AS DOUBLE)
    FROM (SELECT unnest(map_entries(CAST(measures AS MAP(VARCHAR, DOUBLE)))) AS e)
), ant AS (
    SELECT CAST(antigens AS VARCHAR[]) AS names
), bounds AS (
    -- criterion rows that apply to a patient in no particular subgroup, plus the page's ages
    SELECT c.trial_id, 'criterion' AS kind, c.criterion_type, c.ordinal, c.position, c.variable,
           c.lower, c.lower_inclusive, c.upper, c.upper_inclusive, c.unit, c.negated, c.antigen,
           c.alt_group, c.text
    FROM eligibility_constraints c
    WHERE c.trial_id IN (SELECT trial_id FROM candidates)
      AND (c.condition IS NULL OR c.condition IN ('flow cytometry', 'immunohistochemistry', 'morphology'))
    UNION ALL
    SELECT a.trial_id, 'page age', NULL, 0, 0, 'age',
           CASE WHEN a.min_age_source = 'page' THEN a.min_age_years END,
           CASE WHEN a.min_age_source = 'page' AND a.min_age_years IS NOT NULL THEN true END,
           CASE WHEN a.max_age_source = 'page' THEN a.max_age_years END,
           CASE WHEN a.max_age_source = 'page' AND a.max_age_years IS NOT NULL THEN true END,
           'years', false, NULL, NULL,
           'age on the page: ' || coalesce(k.min_age, 'no minimum') || ' to ' || coalesce(k.max_age, 'no maximum')
    FROM trial_ages a
    JOIN candidates k USING (trial_id)
    WHERE (a.min_age_source = 'page' AND a.min_age_years IS NOT NULL)
       OR (a.max_age_source = 'page' AND a.max_age_years IS NOT NULL)
), judged AS (
    SELECT b.*, p.value,
           CASE
               WHEN b.variable = 'antigen_expression' THEN
                   CASE
                       WHEN (SELECT names FROM ant) IS NULL THEN NULL
                       WHEN b.unit = 'positive' THEN list_contains((SELECT names FROM ant), b.antigen)
                       WHEN list_contains((SELECT names FROM ant), b.antigen) THEN NULL  -- % unknown
                       ELSE (b.lower IS NULL OR 0 > b.lower OR (b.lower_inclusive AND b.lower = 0))
                        AND (b.upper IS NULL OR 0 < b.upper OR (b.upper_inclusive AND b.upper = 0))
                   END
               WHEN p.value IS NULL THEN NULL
               ELSE (b.lower IS NULL OR p.value > b.lower OR (b.lower_inclusive AND p.value = b.lower))
                AND (b.upper IS NULL OR p.value < b.upper OR (b.upper_inclusive AND p.value = b.upper))
           END AS inside
    FROM bounds b
    LEFT JOIN patient p ON p.variable = b.variable AND p.unit IS NOT DISTINCT FROM b.unit
), evaluated AS (
    SELECT *,
           CASE WHEN inside IS NULL THEN NULL WHEN negated THEN NOT inside ELSE inside END AS admits,
           eligibility_rule_text(variable, lower, lower_inclusive, upper, upper_inclusive, unit, negated,
                                 antigen)
           || CASE WHEN value IS NULL THEN '' ELSE ' (patient ' || printf('%g', value) || ')' END AS rule
    FROM judged
), grouped AS (
    -- a row outside any alternative group is a rule of its own; a group is one rule
    SELECT trial_id, kind, criterion_type, ordinal, min(position) AS position,
           CASE WHEN bool_or(admits) THEN true WHEN count(admits) < count(*) THEN NULL ELSE false END AS admits,
           string_agg(rule, ' or ' ORDER BY position) AS rule,
           string_agg(DISTINCT text, ' / ' ORDER BY text) AS text
    FROM evaluated
    GROUP BY trial_id, kind, criterion_type, ordinal, coalesce(alt_group, -position)
), flagged AS (
    SELECT f.trial_id, 'flag' AS kind, f.criterion_type, f.ordinal, 0 AS position,
           NOT list_contains(CAST(has_flags AS VARCHAR[]), f.flag) AS admits,
           'no ' || f.flag AS rule, cr.text
    FROM eligibility_flags f
    JOIN criteria cr USING (trial_id, criterion_type, ordinal)
    WHERE has_flags IS NOT NULL AND f.trial_id IN (SELECT trial_id FROM candidates)
), studied AS (
    SELECT k.trial_id, 'condition' AS kind, NULL AS criterion_type, 0 AS ordinal, 0 AS position,
           regexp_matches(concat_ws(' | ', k.brief_title, (
               SELECT string_agg(name, ' | ') FROM conditions c WHERE c.trial_id = k.trial_id), (
               SELECT string_agg(keyword, ' | ') FROM keywords w WHERE w.trial_id = k.trial_id)),
               CAST(condition_regex AS VARCHAR), 'i') AS admits,
           'studies ' || coalesce(CAST(condition_label AS VARCHAR), CAST(condition_regex AS VARCHAR)) AS rule,
           coalesce((SELECT string_agg(name, '; ' ORDER BY position) FROM conditions c
                     WHERE c.trial_id = k.trial_id), k.brief_title) AS text
    FROM candidates k
    WHERE condition_regex IS NOT NULL
), aimed AS (
    -- a cell therapy aimed at antigens the tumour does not express
    SELECT th.trial_id, 'target' AS kind, NULL AS criterion_type, 0 AS ordinal, min(th.therapy_ordinal) AS position,
           bool_or(list_has_any(th.targets, (SELECT names FROM ant))) AS admits,
           'therapy aimed at ' || array_to_string(list_sort(list_distinct(flatten(list(th.targets)))), ', ') AS rule,
           string_agg(coalesce(th.intervention_name, th.modality), '; ' ORDER BY th.therapy_ordinal) AS text
    FROM therapies th
    WHERE (SELECT names FROM ant) IS NOT NULL AND th.modality <> 'other' AND len(th.targets) > 0
      AND th.trial_id IN (SELECT trial_id FROM candidates)
    GROUP BY th.trial_id
)
SELECT k.nct_id, r.trial_id, k.brief_title, k.overall_status, r.kind, r.criterion_type, r.ordinal,
       r.position, r.rule, r.admits, r.text
FROM (SELECT * FROM grouped UNION ALL SELECT * FROM flagged
      UNION ALL SELECT * FROM studied UNION ALL SELECT * FROM aimed) r
JOIN candidates k USING (trial_id);

-- FROM match_patient(age := 72, ecog := 2, measures := MAP {'creatinine|xULN': 1.8})
-- One row per candidate trial: eligible = no rule excludes the patient; excluded_by = the
-- rules that do, each as '<criterion> <ordinal>: <rule> — <criterion text>'; not_checked =
-- rules the patient's data cannot decide.  Same parameters as match_patient_rules.
CREATE OR REPLACE MACRO match_patient(age := NULL, ecog := NULL, measures := NULL,
                                      condition_regex := NULL, condition_label := NULL,
                                      antigens := NULL, has_flags := NULL,
                                      all_statuses := false) AS TABLE
WITH r AS (
    SELECT * FROM match_patient_rules(age := age, ecog := ecog, measures := measures,
                                      condition_regex := condition_regex, condition_label := condition_label,
                                      antigens := antigens, has_flags := has_flags,
                                      all_statuses := all_statuses)
), verdicts AS (
    SELECT trial_id,
           list(coalesce(criterion_type || ' ' || ordinal, kind) || ': ' || rule || ' — ' || coalesce(text, '')
                ORDER BY criterion_type = 'exclusion' NULLS FIRST, ordinal, position)
               FILTER (WHERE admits = false) AS excluded_by,
           count(*) FILTER (WHERE admits) AS checked_ok,
           count(*) FILTER (WHERE admits IS NULL) AS not_checked
    FROM r
    GROUP BY trial_id
)
SELECT t.nct_id, t.trial_id, t.brief_title, t.overall_status,
       coalesce(len(v.excluded_by), 0) = 0 AS eligible,
       coalesce(v.excluded_by, []) AS excluded_by,
       coalesce(v.checked_ok, 0) AS rules_met,
       coalesce(v.not_checked, 0) AS not_checked
FROM trials t
LEFT JOIN verdicts v USING (trial_id)
WHERE CAST(all_statuses AS BOOLEAN)
   OR (t.overall_status = 'RECRUITING' AND NOT coalesce(t.removed_from_source, false));
