"""Dev tooling: CT.gov ground truth loaders, fixture renderers, fixture builder, accuracy eval."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import lxml.html
import pytest

from pipeline.devtools import build_fixtures as bf
from pipeline.devtools.ctgov import (
    CORPUS_DIR,
    iter_corpus,
    load_file,
    load_studies,
    parse_age,
    parse_ctgov_date,
    record_from_dict,
    record_to_dict,
    split_criteria,
    split_degrees,
)
from pipeline.devtools.eval import (
    EvalPage,
    age_key,
    dev_corpus,
    evaluate,
    expected_record,
    format_report,
    main as eval_main,
    match_items,
    read_corpus,
    text_similarity,
)
from pipeline.devtools.render import (
    VARIANTS,
    default_show_nct,
    plan_page,
    render_page,
    shown_fields,
    visible_truth,
)
from pipeline.devtools.render.common import veeva_ages
from pipeline.models import Criterion, TrialRecord

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "pages"
SAMPLE = REPO / "raw" / "sample" / "html"

needs_corpus = pytest.mark.skipif(not CORPUS_DIR.is_dir(), reason="shared CT.gov corpus not available")


@pytest.fixture(scope="module")
def studies():
    if not CORPUS_DIR.is_dir():
        pytest.skip("shared CT.gov corpus not available")
    return {s.record.nct_id: s for s in load_studies()}


def visible_text(html: str) -> str:
    """What a reader sees: no head, scripts, styles, templates or hidden elements."""
    root = lxml.html.fromstring(html)
    for el in root.xpath("//head|//script|//style|//noscript|//template|//svg"
                         "|//*[@hidden]|//*[@aria-hidden='true']|//*[contains(@style,'display:none')]"):
        el.drop_tree()
    return " ".join(root.text_content().split())


# --------------------------------------------------------------------------- loaders


@needs_corpus
def test_corpus_has_145_distinct_trials_and_covid_search_has_100():
    every = list(iter_corpus())
    assert len(every) == 147  # NCT02513394 and NCT02028676 are there twice
    studies = load_studies()
    assert len(studies) == 145
    assert [s.record.nct_id for s in studies] == sorted(s.record.nct_id for s in studies)
    covid = load_file(CORPUS_DIR / "aact/json_v1/covid-19-search.json")
    assert len(covid) == 100 and all(s.source_format == "v1" for s in covid)
    assert len(load_file(CORPUS_DIR / "aact/json_v1/results_2.json")) == 3
    # Files in other shapes load as studies only when they are one: raw_study.xml is a
    # clinical_study, initialize_participant_flow_data.json a v2 record.
    assert load_file(CORPUS_DIR / "aact/xml/raw_study.xml")[0].record.nct_id == "NCT00002475"
    assert load_file(CORPUS_DIR / "aact/json_v2/initialize_participant_flow_data.json")[0].source_format == "v2"


def test_files_of_other_shapes_are_skipped(tmp_path):
    (tmp_path / "a.json").write_text('{"resultsSection": {}}')
    (tmp_path / "b.json").write_text("[1, 2]")
    (tmp_path / "c.xml").write_text("<other><nct_id>NCT00000001</nct_id></other>")
    (tmp_path / "d.xml").write_text("<clinical_study><broken>")
    assert [load_file(p) for p in sorted(tmp_path.iterdir())] == [[], [], [], []]


@needs_corpus
def test_single_study_v1_file_loads(tmp_path):
    doc = json.loads((CORPUS_DIR / "aact/json_v1/results_2.json").read_text())
    (tmp_path / "one.json").write_text(json.dumps({"Study": doc["FullStudiesResponse"]["FullStudies"][0]["Study"]}))
    [study] = load_file(tmp_path / "one.json")
    assert study.source_format == "v1" and study.record.nct_id.startswith("NCT")


@needs_corpus
def test_nct02513394_xml_and_v2_agree_on_key_fields(studies):
    xml = load_file(CORPUS_DIR / "mcode/NCT02513394.xml")[0].record
    v2 = load_file(CORPUS_DIR / "mcode/NCT02513394.json")[0].record
    assert studies["NCT02513394"].source_format == "v2"  # dedupe prefers v2
    for name in ("nct_id", "brief_title", "official_title", "acronym", "lead_sponsor", "overall_status", "phases",
                 "study_type", "enrollment", "enrollment_type", "sex", "min_age", "min_age_years", "max_age",
                 "healthy_volunteers", "primary_purpose", "allocation", "intervention_model", "masking",
                 "start_date", "completion_date", "first_submitted_date", "conditions", "keywords",
                 "identifiers", "interventions", "arms", "criteria", "funder_types"):
        assert getattr(xml, name) == getattr(v2, name), name
    assert v2.brief_title == "PALbociclib CoLlaborative Adjuvant Study"
    assert v2.acronym == "PALLAS"
    assert (v2.overall_status, v2.phases, v2.study_type) == ("ACTIVE_NOT_RECRUITING", ("PHASE3",), "INTERVENTIONAL")
    assert (v2.enrollment, v2.enrollment_type) == (5796, "ACTUAL")
    assert (v2.min_age, v2.min_age_years, v2.max_age, v2.max_age_years) == ("18 Years", 18.0, None, None)
    assert (v2.allocation, v2.intervention_model, v2.masking) == ("RANDOMIZED", "PARALLEL", "NONE")
    assert v2.start_date == dt.date(2015, 8, 1)  # "2015-08": first of the month
    assert [(i.id_type, i.id_value) for i in v2.identifiers[:2]] == [("nct", "NCT02513394"), ("org_study_id", "AFT-05")]
    assert v2.arms[0].interventions == ("Drug: Palbociclib", "Drug: Standard Adjuvant Endocrine Therapy")
    official = [c for c in v2.contacts if c.role == "overall_official"][0]
    assert (official.name, official.credentials, official.title) == ("Suzanne George", "MD", "Principal Investigator")
    assert len(v2.locations) == 437 and v2.locations[0].city == "Mobile" and v2.locations[0].state == "Alabama"


@needs_corpus
def test_v1_record_values(studies):
    study = studies["NCT02028676"]
    r = study.record
    assert study.source_format == "v1"
    assert r.start_date == dt.date(2007, 3, 1)  # "March 2007"
    assert r.first_submitted_date == dt.date(2013, 12, 31)  # "December 31, 2013"
    assert r.last_update_date == dt.date(2014, 6, 6)
    assert r.completion_date == dt.date(2012, 6, 1)
    assert (r.min_age, r.min_age_years, r.max_age, r.max_age_years) == ("3 Months", 0.25, "17 Years", 17.0)
    assert (r.phases, r.masking, r.allocation, r.intervention_model) == (("PHASE4",), "NONE", "RANDOMIZED", "FACTORIAL")
    assert r.funder_types == ("OTHER", "INDUSTRY")  # OTHER_GOV reads as "Other" on the mirrors
    assert [(i.id_type, i.id_value) for i in r.identifiers] == [
        ("nct", "NCT02028676"), ("org_study_id", "G0300400"), ("secondary", "24791884"), ("secondary", "G0300400")]
    gibb = r.contacts[0]
    assert (gibb.role, gibb.name, gibb.credentials, gibb.title, gibb.affiliation) == (
        "overall_official", "Diana M Gibb", "MD", "Principal Investigator", "Medical Research Council")
    assert r.arms[0].arm_type == "EXPERIMENTAL" and r.arms[0].interventions == ("Other: Clinically Driven Monitoring (CDM)",)
    assert r.interventions[2].intervention_type == "DRUG"


@needs_corpus
def test_legacy_xml_values(studies):
    r = studies["NCT04349592"].record  # aact/xml/NCT04349592_covid_19_hcq.xml
    assert studies["NCT04349592"].source_format == "xml"
    assert (r.overall_status, r.phases, r.enrollment, r.enrollment_type) == ("COMPLETED", ("NA",), 456, "ACTUAL")
    assert r.masking == "QUADRUPLE" and r.sex == "ALL" and r.healthy_volunteers is False
    # Arms get their treatments from the interventions' arm_group_label links.
    assert r.arms[0].interventions == ("Drug: Hydroxychloroquine", "Drug: Azithromycin")
    assert r.start_date == dt.date(2020, 4, 14)


def test_dates_ages_and_degrees():
    assert parse_ctgov_date("July 3, 2021") == dt.date(2021, 7, 3)
    assert parse_ctgov_date("March 2007") == dt.date(2007, 3, 1)
    assert parse_ctgov_date("2017-02") == dt.date(2017, 2, 1)
    assert parse_ctgov_date("2017-11-28") == dt.date(2017, 11, 28)
    assert parse_ctgov_date("Sept 2019") == dt.date(2019, 9, 1)
    assert parse_ctgov_date("soon") is None and parse_ctgov_date(None) is None
    assert parse_age("18 Years") == ("18 Years", 18.0)
    assert parse_age("6 Months") == ("6 Months", 0.5)
    assert parse_age("2 Weeks")[1] == pytest.approx(2 / 52.1775)
    assert parse_age("28 Days")[1] == pytest.approx(28 / 365.25)
    assert parse_age("N/A") == (None, None)
    assert split_degrees("Amal A Elkholy, PhD") == ("Amal A Elkholy", "PhD")
    assert split_degrees("Nagwa A Sabri, professor") == ("Nagwa A Sabri", "professor")
    assert split_degrees("Charles L. Wiseman, MD, FACP") == ("Charles L. Wiseman", "MD, FACP")
    assert split_degrees("Wei Jia") == ("Wei Jia", None)


# --------------------------------------------------------------------------- criteria splitting

LEGACY_BLOCK = """
        For more information please visit www.example.com

        Inclusion Criteria:

          -  Women with systemic autoimmune disease, including:

               -  Lupus (systemic lupus erythematosus or cutaneous
                  lupus)

               -  Scleroderma

          -  18 years of age or
             older

        Exclusion Criteria: 1. Unable to speak English. 2. Unable to
        consent

          1. Pregnant

         10. Prior therapy with
             anti-PD-1
      """


def _tuples(criteria):
    return [(c.criterion_type, c.ordinal, c.parent_ordinal, c.text) for c in criteria]


def test_split_criteria_legacy_xml_block():
    assert _tuples(split_criteria(LEGACY_BLOCK, wrapped=True)) == [
        ("inclusion", 1, None, "For more information please visit www.example.com"),
        ("inclusion", 2, None, "Women with systemic autoimmune disease, including:"),
        ("inclusion", 3, 2, "Lupus (systemic lupus erythematosus or cutaneous lupus)"),
        ("inclusion", 4, 2, "Scleroderma"),
        ("inclusion", 5, None, "18 years of age or older"),
        ("exclusion", 1, None, "Unable to speak English. 2. Unable to consent"),
        ("exclusion", 2, None, "Pregnant"),
        ("exclusion", 3, None, "Prior therapy with anti-PD-1"),
    ]


def test_split_criteria_v2_markdown():
    text = ("Key Inclusion Criteria:\n\n* Age \\>= 18\n* Weight criteria:\n\n  * a) Cohort 1: \\< 40 kg\n"
            "  * b) Cohort 2\n\nFFPE block required.\n\n-\n\nExclusion criteria:\n\n1. Pregnant\n2. CD4 \\<200")
    assert _tuples(split_criteria(text, markdown=True)) == [
        ("inclusion", 1, None, "Age >= 18"),
        ("inclusion", 2, None, "Weight criteria:"),
        ("inclusion", 3, 2, "Cohort 1: < 40 kg"),
        ("inclusion", 4, 2, "Cohort 2"),
        ("inclusion", 5, None, "FFPE block required."),
        ("exclusion", 1, None, "Pregnant"),
        ("exclusion", 2, None, "CD4 <200"),
    ]


@needs_corpus
def test_split_criteria_real_records(studies):
    fabry = studies["NCT01298141"].record.criteria  # legacy XML, three levels deep
    inc = [c for c in fabry if c.criterion_type == "inclusion"]
    assert inc[0].text == "Cohort 1:" and inc[0].parent_ordinal is None
    assert inc[3].text.startswith("The patient must meet current Canadian guidelines") and inc[3].text.endswith(
        "by meeting one of the following criteria:")
    assert (inc[4].parent_ordinal, inc[5].parent_ordinal) == (4, 5)
    assert inc[5].text == "Isolated proteinuria ≥500 mg/day/1.73 m2 without other cause"
    assert len([c for c in fabry if c.criterion_type == "exclusion"]) == 3
    remdesivir = studies["NCT04431453"].record.criteria  # API v2 Markdown
    assert remdesivir[1].text.startswith("Cohort 1: ≥ 12 years to < 18 years") and remdesivir[1].parent_ordinal == 1
    assert remdesivir[-1] == Criterion("exclusion", 7, None, "Note: Other protocol defined Inclusion/Exclusion criteria may apply")
    # The same trial as legacy XML and as v2 Markdown splits into the same items.
    assert load_file(CORPUS_DIR / "mcode/NCT02513394.xml")[0].record.criteria == studies["NCT02513394"].record.criteria


# --------------------------------------------------------------------------- renderers


def _record(**kw) -> TrialRecord:
    base = dict(
        nct_id="NCT01234567", brief_title="A Study of Widgets & <Gadgets> in Adults", lead_sponsor="Acme Bio",
        overall_status="RECRUITING", phases=("PHASE1", "PHASE2"), study_type="INTERVENTIONAL", enrollment=30,
        enrollment_type="ESTIMATED", sex="ALL", min_age="18 Years", max_age="75 Years", min_age_years=18.0,
        max_age_years=75.0, healthy_volunteers=False, brief_summary="Short summary.",
        start_date=dt.date(2024, 4, 11), last_update_date=dt.date(2025, 6, 14),
        first_submitted_date=dt.date(2024, 1, 2), keywords=("widgets",), conditions=("Widget Disease",),
        criteria=(Criterion("inclusion", 1, None, "Adults aged 18 to 75"),
                  Criterion("inclusion", 2, 1, "Signed consent"),
                  Criterion("exclusion", 1, None, "Pregnancy")),
    )
    base.update(kw)
    return TrialRecord(**base)


def test_veeva_age_phrases():
    assert veeva_ages(_record()) == "18 to 75 years old"
    assert veeva_ages(_record(max_age=None)) == "18+ years old"
    assert veeva_ages(_record(min_age=None, max_age="65 Years")) == "up to 65 years old"
    assert veeva_ages(_record(min_age="6 Months", max_age="17 Years")) == "6 months to 17 years old"
    assert veeva_ages(_record(min_age=None, max_age="28 Days")) == "up to 28 days old"
    assert veeva_ages(_record(min_age=None, max_age=None)) is None


@pytest.mark.parametrize("variant", VARIANTS["veeva"])
def test_veeva_page_shows_layout_strings(variant):
    html = render_page(_record(), "veeva", variant, show_nct=True).html
    text = visible_text(html)
    for expected in ("ClinicalTrials.Veeva", "A Study of Widgets & <Gadgets> in Adults", "Acme Bio", "Status and phase",
                     "Enrolling", "Conditions", "Widget Disease", "Identifiers", "NCT01234567",
                     "Details and patient eligibility", "30 estimated patients", "18 to 75 years old",
                     "No Healthy Volunteers", "Adults aged 18 to 75", "Signed consent", "Pregnancy",
                     "Data sourced from clinicaltrials.gov", "© Copyright 2025 Veeva Systems", "Loading..."):
        assert expected in text, expected
    assert "&lt;Gadgets&gt;" in html  # text is escaped in the markup
    assert "window.__APP_STATE__" in html and "<style>" in html and "<noscript>" in html
    no_phase = visible_text(render_page(_record(phases=()), "veeva", variant, show_nct=True).html)
    assert "Status and phase" not in no_phase and "Status" in no_phase


@pytest.mark.parametrize("variant", VARIANTS["clinconnect"])
def test_clinconnect_page_shows_layout_strings(variant):
    page = render_page(_record(completion_date=None), "clinconnect", variant, show_nct=True)
    text = visible_text(page.html)
    for expected in ("Launched by ACME BIO · Apr 11, 2024", "Trial Information", "Current as of June 14, 2025",
                     "Recruiting", "Phase 1/Phase 2", "Keywords", "widgets", "ClinConnect Summary", "Gender",
                     "Eligibility criteria", "Inclusion Criteria:", "Adults aged 18 to 75", "• Signed consent", "• Pregnancy",
                     "Exclusion Criteria:",
                     "About Acme Bio", "Timeline", "First submit", "Jan 2, 2024", "Not reported", "NCT01234567"):
        assert expected in text, expected
    assert "Enrolling" not in text  # CT.gov words on ClinConnect
    assert f'<link rel="canonical" href="https://clinconnect.io/trials/NCT01234567">' in page.html or variant == 2


@pytest.mark.parametrize("site", ["veeva", "clinconnect"])
@pytest.mark.parametrize("variant", [1, 2, 3])
def test_pages_without_nct_do_not_show_it(site, variant):
    for seed in range(6):
        page = render_page(_record(), site, variant, show_nct=False, rng_seed=seed)
        assert "NCT01234567" not in visible_text(page.html)
        assert page.plan.show_nct is False
        if not page.plan.nct_visible:
            assert "NCT01234567" not in page.html and "nct_id" not in page.shown
        else:  # ClinConnect: still in the URL (and canonical link on some variants)
            assert site == "clinconnect" and page.plan.url.endswith("/trials/NCT01234567")
        # Scripts carry decoy trial data with other NCT IDs.
        root = lxml.html.fromstring(page.html)
        scripts = " ".join(s.text or "" for s in root.iter("script"))
        assert "relatedTrials" in scripts and "NCT0" in scripts


@needs_corpus
@pytest.mark.parametrize("nct", ["NCT01298141", "NCT00513591", "NCT02028676", "NCT03133988"])
def test_real_records_render_on_every_variant(studies, nct):
    study = studies[nct]
    for site, variants in VARIANTS.items():
        for variant in variants:
            page = render_page(study.record, site, variant, show_nct=True, rng_seed=1, extras=study.extras)
            assert lxml.html.fromstring(page.html).find(".//body") is not None
            text = visible_text(page.html)
            assert study.record.brief_title in text
            first = study.record.criteria[0].text
            assert first in text
            assert 20_000 < len(page.html.encode()) < 200_000


def test_shown_fields_per_site_and_variant():
    v1, v2 = shown_fields("veeva", 1, True), shown_fields("veeva", 2, False)
    assert "criteria.nesting" in v1 and "criteria.nesting" not in v2  # div soup: text markers only
    assert "nct_id" in v1 and "nct_id" not in v2
    assert "contacts.central_contact.phone" in v2 and "contacts.central_contact.phone" not in v1
    assert "start_date" not in v1 and "enrollment" in v1  # Veeva shows no dates
    cc = shown_fields("clinconnect", 3, False, nct_in_url=True)
    assert {"nct_id", "start_date", "keywords", "contacts.overall_official"} <= cc
    assert not {"enrollment", "brief_summary", "criteria.nesting", "conditions"} & cc
    rec = _record(identifiers=(), nct_id="NCT01234567")
    assert visible_truth(rec, v2).nct_id is None and visible_truth(rec, v1).nct_id == "NCT01234567"


def test_show_nct_policy_and_urls():
    ids = [f"NCT{n:08d}" for n in range(400)]
    veeva_hidden = sum(not default_show_nct(i, "veeva", 1) for i in ids) / len(ids)
    cc_hidden = sum(not default_show_nct(i, "clinconnect", 1) for i in ids) / len(ids)
    assert 0.17 < veeva_hidden < 0.33 and 0.25 < cc_hidden < 0.42
    plan = plan_page(_record(), "veeva", 1, show_nct=True)
    assert plan.url == "https://ctv.veeva.com/study/a-study-of-widgets-gadgets-in-adults" == plan.canonical


def test_rendering_is_deterministic():
    a = render_page(_record(), "veeva", 2, show_nct=True, rng_seed=5).html
    b = render_page(_record(), "veeva", 2, show_nct=True, rng_seed=5).html
    c = render_page(_record(), "veeva", 2, show_nct=True, rng_seed=6).html
    assert a == b and a != c


# --------------------------------------------------------------------------- builder


@needs_corpus
def test_builder_is_byte_identical_and_writes_manifest_and_truth(tmp_path, studies):
    specs = bf.FIXTURE_SPECS[:5] + bf.SAMPLE_SPECS[:3]
    all_studies = list(studies.values())
    m1 = bf.build(tmp_path / "a", specs, all_studies)
    bf.build(tmp_path / "b", specs, all_studies)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(m1) == 8 and {"manifest.jsonl", "truth.jsonl", "veeva-v1-NCT03599518.html"} <= set(files)
    manifest = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert manifest[0].keys() >= {"file", "site", "variant", "nct_id", "url", "shown"}
    truth = [json.loads(x) for x in (tmp_path / "a" / "truth.jsonl").read_text().splitlines()]
    assert {t["nct_id"] for t in truth} == {m["nct_id"] for m in manifest}
    for t in truth:
        assert record_from_dict(t) == studies[t["nct_id"]].record
    # A rebuild with fewer pages removes the stale ones.
    bf.build(tmp_path / "a", specs[:2], all_studies)
    assert len(list((tmp_path / "a").glob("*.html"))) == 2


@needs_corpus
def test_committed_fixture_sets_match_the_builder(tmp_path, studies):
    all_studies = list(studies.values())
    for committed, specs in ((FIXTURES, bf.FIXTURE_SPECS), (SAMPLE, bf.SAMPLE_SPECS)):
        bf.build(tmp_path / committed.name, specs, all_studies)
        fresh = sorted(p.name for p in (tmp_path / committed.name).iterdir())
        assert fresh == sorted(p.name for p in committed.iterdir())
        for name in fresh:
            assert (tmp_path / committed.name / name).read_bytes() == (committed / name).read_bytes(), name


def test_committed_fixture_sets_cover_what_they_promise():
    fixtures = [json.loads(x) for x in (FIXTURES / "manifest.jsonl").read_text().splitlines()]
    sample = [json.loads(x) for x in (SAMPLE / "manifest.jsonl").read_text().splitlines()]
    assert {(m["site"], m["variant"]) for m in fixtures} == {(s, v) for s in VARIANTS for v in VARIANTS[s]}
    assert any(not m["show_nct"] for m in fixtures if m["site"] == "veeva")
    assert any(not m["nct_visible"] for m in fixtures if m["site"] == "clinconnect")
    by_trial = {}
    for m in sample:
        by_trial.setdefault(m["nct_id"], set()).add(m["site"])
    assert sum(sites == {"veeva", "clinconnect"} for sites in by_trial.values()) >= 3  # cross-mirror duplicates
    size = sum(p.stat().st_size for d in (FIXTURES, SAMPLE) for p in d.iterdir())
    assert size < 1_550_000  # committed total stays around 1.5 MB
    for m in fixtures + sample:
        assert m["file"] == f"{m['site']}-v{m['variant']}-{m['nct_id']}.html"


def test_truth_round_trips():
    rec = _record(contacts=(), locations=())
    assert record_from_dict(json.loads(json.dumps(record_to_dict(rec)))) == rec


# --------------------------------------------------------------------------- eval


def _perfect(page: EvalPage) -> TrialRecord:
    return expected_record(page)


def test_eval_truth_against_truth_is_100_percent():
    pages = read_corpus(FIXTURES)
    assert len(pages) == 24
    result = evaluate(pages, _perfect)
    assert result["failing"] == []
    assert result["pages"] == {"veeva": 13, "clinconnect": 11, "overall": 24}
    for field, info in result["fields"].items():
        assert info["overall"]["score"] == 1.0, field
    assert result["fields"]["criteria.nesting"]["overall"]["n"] > 0
    assert "clinconnect" not in result["fields"]["enrollment"]  # only fields a page shows are scored
    # ClinConnect's own summary is not the trial's: brief_summary is checked to stay empty there.
    assert result["fields"]["brief_summary"]["clinconnect"]["n"] == 11
    leaky = evaluate(pages, lambda p: replace(_perfect(p), brief_summary="This clinical trial is exploring ..."))
    assert leaky["fields"]["brief_summary"]["clinconnect"]["score"] == 0.0
    assert "OK: every scored field" in format_report(result)


def test_eval_corrupted_extraction_scores_below_100():
    pages = read_corpus(FIXTURES)

    def corrupt(page: EvalPage) -> TrialRecord:
        rec = _perfect(page)
        return replace(
            rec,
            overall_status="WITHDRAWN" if page.site == "veeva" else rec.overall_status,
            brief_title=(rec.brief_title or "") + " -- and a lot of extra words that do not belong here",
            criteria=rec.criteria[:-1],  # one criterion missed per page
            nct_id="NCT99999999",  # a guessed id is always wrong
            enrollment=(rec.enrollment or 0) + 1,
        )

    result = evaluate(pages, corrupt)
    f = result["fields"]
    assert f["overall_status"]["veeva"]["score"] < 0.2 and f["overall_status"]["clinconnect"]["score"] == 1.0
    assert f["brief_title"]["overall"]["score"] < 0.5 and f["brief_title"]["overall"]["mean_similarity"] < 0.95
    crit = f["criteria"]["overall"]
    assert crit["precision"] == 1.0 and 0.9 < crit["recall"] < 1.0 and crit["score"] < 1.0
    assert f["nct_id"]["overall"]["score"] == 0.0
    assert f["enrollment"]["overall"]["score"] < 0.1 and f["sex"]["overall"]["score"] == 1.0
    assert {"overall_status", "brief_title", "criteria", "nct_id", "enrollment"} <= set(result["failing"])
    assert "FAIL:" in format_report(result)
    # An extractor that crashes or extracts nothing is scored, not fatal.
    boom = evaluate(pages[:3], lambda page: 1 / 0)
    assert sum(boom["parse_status"][s].get("crashed", 0) for s in boom["parse_status"]) == 3
    assert evaluate(pages[:3], lambda page: None)["fields"]["brief_title"]["overall"]["score"] == 0.0


def test_eval_matching_rules():
    assert text_similarity("Hello  World", "hello world") == 1.0
    assert text_similarity("abc", None) == 0.0 and text_similarity(None, "") == 1.0
    assert age_key("18 Years") == age_key("18 years") == age_key("18 year")
    assert age_key("18 Years") != age_key("18 Months")
    truth = (Criterion("inclusion", 1, None, "Age ≥ 18 years"), Criterion("inclusion", 2, 1, "Signed consent"))
    got = (Criterion("inclusion", 1, None, "Age ≥18 years"), Criterion("exclusion", 1, None, "Signed consent"))
    assert match_items("criteria", truth, got) == [(0, 0)]  # similar text matches; another type does not


def test_eval_scores_nesting_on_matched_items():
    rec = _record()
    page = EvalPage("x.html", "veeva", 1, "https://ctv.veeva.com/study/x", b"", rec, shown_fields("veeva", 1, True))
    flat = replace(rec, criteria=tuple(replace(c, parent_ordinal=None) for c in rec.criteria))
    result = evaluate([page], lambda p: flat)
    assert result["fields"]["criteria"]["overall"]["score"] == 1.0
    assert result["fields"]["criteria.nesting"]["overall"]["score"] == pytest.approx(2 / 3)


@needs_corpus
def test_dev_corpus_renders_every_record_site_and_variant():
    pages = list(dev_corpus(limit=2))
    assert len(pages) == 2 * 6
    assert {(p.site, p.variant) for p in pages} == {(s, v) for s in VARIANTS for v in VARIANTS[s]}
    assert all(p.url.startswith("https://") and p.html.startswith(b"<!DOCTYPE html>") for p in pages)
    assert len(list(dev_corpus(limit=1, exhaustive=True))) == 12


def test_eval_cli_on_committed_fixtures(capsys, tmp_path):
    code = eval_main(["--corpus", str(FIXTURES), "--no-fail", "--examples", "0", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "veeva" in out and "clinconnect" in out and "overall" in out and "criteria" in out
    assert json.loads((tmp_path / "r.json").read_text())["pages"]["overall"] == 24
