"""Markups nobody designed the parser around: the same visible page, other HTML.

Each variant shows seed 001's content (a Veeva page) or a ClinConnect page in a
structure the fixture renderers do not use: accordion buttons, label and value
run together in one row, ARIA headings, tables inside definition lists, labels
with trailing colons, <br>-only layout.  The extracted fields must not change.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.ingest import raw_page_from_bytes
from pipeline.parse import parse_page

FETCHED = dt.datetime(2025, 1, 1)

CRITERIA_LIST = """
<ol><li>Histologically confirmed diagnosis of CD123+ AML;</li>
<li>Relapsed or refractory CD123+ AML (meeting one of the following conditions):
  <ol><li>CR not achieved after standardized chemotherapy;</li><li>2 or more relapses;</li></ol></li>
<li>ECOG performance status 0 to 2;</li></ol>"""

VEEVA_ACCORDION = f"""<!doctype html><html><head><title>IL3 CAR-T Cell Therapy | ClinicalTrials.Veeva</title>
<script>window.__STATE__={{"status":"Completed","nct":"NCT99999999"}}</script></head><body>
<header><a href="/">ClinicalTrials.Veeva</a><button aria-label="menu">Menu</button></header>
<main><div role="heading" aria-level="1" class="x1">IL3 CAR-T Cell Therapy</div>
<div class="x2"><img alt="Zhejiang University logo" src="l.png"><span>Zhejiang University</span></div>
<section><button class="acc">Status and phase</button><div><span>Not yet enrolling</span><br><span>Early Phase 1</span></div></section>
<section><button class="acc">Conditions</button><div>Acute Myeloid Leukemia</div></section>
<section><button class="acc">Treatments</button><div>Drug: IL3 CAR T-cells</div></section>
<section><button class="acc">Identifiers</button><div>NCT04599543<br>CD123-001</div></section>
<h2>Details and patient eligibility</h2>
<div class="row"><span>Enrollment</span> <span>36 estimated patients</span></div>
<div class="row"><span>Sex</span> <span>All</span></div>
<div class="row"><span>Ages</span> <span>18 to 75 years old</span></div>
<button class="acc">Inclusion criteria</button><div>{CRITERIA_LIST}</div>
<button class="acc">Exclusion criteria</button><div><ul><li>Pregnant (or lactating) women;</li><li>Patients with HIV infection;</li></ul></div>
<h3>Trial design</h3><table><tr><th>Primary purpose</th><td>Treatment</td></tr><tr><th>Masking</th><td>None (Open label)</td></tr></table>
<p>36 participants in 1 patient group</p><p>Administration of IL3 CAR T-cells</p><p>Experimental group</p>
<p>Treatment:</p><p>Drug: IL3 CAR T-cells</p>
<h2>Trial contacts and locations</h2><p>1</p><div class="spinner">Loading...</div>
<h3>Central trial contact</h3><p>Yongxian Hu, PhD; He Huang, PhD</p>
</main><footer>Data sourced from clinicaltrials.gov<br>© Copyright 2026 Veeva Systems</footer></body></html>"""

VEEVA_COLON_LABELS = f"""<html><body><div>ClinicalTrials.Veeva</div><div>Menu</div>
<div><b>IL3 CAR-T Cell Therapy</b></div><div>Zhejiang University</div>
<div><strong>Status and phase:</strong><br>Not yet enrolling<br>Early Phase 1</div>
<div><strong>Conditions:</strong><br>Acute Myeloid Leukemia</div>
<div><strong>Identifiers:</strong><br>NCT 0459 9543<br>CD123-001</div>
<div><strong>Enrollment:</strong> 36 estimated patients</div>
<div><strong>Sex:</strong> All</div>
<div><strong>Ages:</strong> 18 to 75 years old</div>
<div><strong>Inclusion and exclusion criteria</strong></div>
<div>Inclusion Criteria:<br>1. Histologically confirmed diagnosis of CD123+ AML;<br>
2. Relapsed or refractory CD123+ AML (meeting one of the following conditions):<br>
a. CR not achieved after standardized chemotherapy;<br>b. 2 or more relapses;<br>
3. ECOG performance status 0 to 2;<br>Exclusion Criteria:<br>• Pregnant (or lactating) women;<br>• Patients with HIV infection;</div>
<div><strong>Central trial contact:</strong></div><div>Yongxian Hu, PhD; He Huang, PhD</div>
<div>Data sourced from clinicaltrials.gov</div></body></html>"""


@pytest.mark.parametrize("html", [VEEVA_ACCORDION, VEEVA_COLON_LABELS], ids=["accordion", "colon-labels"])
def test_veeva_variants_give_the_same_fields(html):
    page = parse_page(raw_page_from_bytes("https://ctv.veeva.com/study/il3-car-t", html.encode(), FETCHED))
    assert (page.source, page.parse_status) == ("veeva", "ok"), page.parse_error
    r = page.record
    assert r.nct_id == "NCT04599543"
    assert r.brief_title == "IL3 CAR-T Cell Therapy"
    assert r.lead_sponsor == "Zhejiang University"
    assert (r.overall_status, r.phases) == ("NOT_YET_RECRUITING", ("EARLY_PHASE1",))
    assert r.conditions == ("Acute Myeloid Leukemia",)
    assert (r.enrollment, r.enrollment_type, r.sex) == (36, "ESTIMATED", "ALL")
    assert (r.min_age_years, r.max_age_years) == (18.0, 75.0)
    assert [(c.criterion_type, c.ordinal, c.parent_ordinal, c.text) for c in r.criteria] == [
        ("inclusion", 1, None, "Histologically confirmed diagnosis of CD123+ AML;"),
        ("inclusion", 2, None, "Relapsed or refractory CD123+ AML (meeting one of the following conditions):"),
        ("inclusion", 3, 2, "CR not achieved after standardized chemotherapy;"),
        ("inclusion", 4, 2, "2 or more relapses;"),
        ("inclusion", 5, None, "ECOG performance status 0 to 2;"),
        ("exclusion", 1, None, "Pregnant (or lactating) women;"),
        ("exclusion", 2, None, "Patients with HIV infection;"),
    ]
    assert [(c.name, c.credentials) for c in r.contacts] == [("Yongxian Hu", "PhD"), ("He Huang", "PhD")]
    assert "NCT99999999" not in repr(r)  # script content is never read


def test_veeva_accordion_design_and_arms():
    r = parse_page(raw_page_from_bytes("https://ctv.veeva.com/study/il3-car-t", VEEVA_ACCORDION.encode(), FETCHED)).record
    assert (r.primary_purpose, r.masking) == ("TREATMENT", "NONE")
    assert [(a.label, a.arm_type, a.interventions) for a in r.arms] == [
        ("Administration of IL3 CAR T-cells", "EXPERIMENTAL", ("Drug: IL3 CAR T-cells",))]
    assert ("veeva_slug", "il3-car-t") in [(i.id_type, i.id_value) for i in r.identifiers]


CLINCONNECT_GRID = """<!DOCTYPE html><html><head><link rel="canonical" href="https://clinconnect.io/trials/NCT06000001"></head>
<body><div>ClinConnect</div><article>
<div><div>NK Cell Therapy Targeting CLL1 or CD33</div></div>
<div>Launched by <a href="/s/zju">ZHEJIANG UNIVERSITY</a> · Apr 11, 2024</div>
<div><h4>Trial Information</h4><small>Current as of June 14, 2025</small></div>
<div><span class="pill">Recruiting</span><span class="pill">Phase 1</span></div>
<section><h4>Keywords</h4><ul><li>AML</li><li>NK cells</li></ul></section>
<section><h4>ClinConnect Summary</h4><p>This study tests a new treatment. Gender: anyone may join.</p></section>
<dl><dt>Gender</dt><dd>ALL</dd></dl>
<section><h4>Eligibility criteria</h4><ul><li>Inclusion Criteria:</li><li>• ≥18 years old.</li><li>• ECOG ≤1.</li>
<li>Exclusion Criteria:</li><li>• Active CNS leukemia.</li></ul></section>
<section><h4>About Zhejiang University</h4><p>A university in Hangzhou.</p></section>
<section><h4>Locations</h4><div><p>First Affiliated Hospital</p><p>Hangzhou, Zhejiang, China</p></div>
<button>Patients applied</button></section>
<section><h4>Trial Officials</h4><p>He Huang, MD</p><p>Principal Investigator</p><p>First Affiliated Hospital of Zhejiang University</p></section>
<section><h4>Timeline</h4><table><tr><td>First submit</td><td>Apr 1, 2024</td></tr><tr><td>Trial launched</td><td>Apr 11, 2024</td></tr>
<tr><td>Trial updated</td><td>Jun 14, 2025</td></tr><tr><td>Estimated completion</td><td>Dec 2027</td></tr></table></section>
</article></body></html>"""


def test_clinconnect_grid_variant():
    page = parse_page(raw_page_from_bytes("https://clinconnect.io/trials/NCT06000001", CLINCONNECT_GRID.encode(), FETCHED))
    assert (page.source, page.parse_status) == ("clinconnect", "ok"), page.parse_error
    r = page.record
    assert r.nct_id == "NCT06000001"
    assert r.brief_title == "NK Cell Therapy Targeting CLL1 or CD33"
    assert r.lead_sponsor == "Zhejiang University"
    assert (r.overall_status, r.phases, r.sex) == ("RECRUITING", ("PHASE1",), "ALL")
    assert r.keywords == ("AML", "NK cells")
    assert r.brief_summary is None
    assert [(c.criterion_type, c.text) for c in r.criteria] == [
        ("inclusion", "≥18 years old."), ("inclusion", "ECOG ≤1."), ("exclusion", "Active CNS leukemia.")]
    assert [(l.facility, l.city, l.state, l.country) for l in r.locations] == [
        ("First Affiliated Hospital", "Hangzhou", "Zhejiang", "China")]
    assert (str(r.first_submitted_date), str(r.start_date), str(r.last_update_date), str(r.completion_date)) == (
        "2024-04-01", "2024-04-11", "2025-06-14", "2027-12-01")
    assert [(c.name, c.title) for c in r.contacts] == [("He Huang", "Principal Investigator")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty page: 0 bytes"),
        (b"   \n  ", "empty page: whitespace only"),
        (b"%PDF-1.4 binary", "not a web page: content is a PDF document"),
        (b"<!doctype html><html><body><h1>Study</h1><p>Status and phase</p><p>Enrol", "truncated HTML"),
        (b"<html><body><h1>Sign in to continue</h1><form>Password</form></body></html>", "not a trial page"),
        (b"<html><body><h1>Trial not found</h1><p>The page you requested does not exist.</p></body></html>",
         "not a trial page"),
    ],
)
def test_bad_pages_are_rejected_with_a_reason(content, reason):
    page = parse_page(raw_page_from_bytes("file:///x.html", content, FETCHED))
    assert page.parse_status == "rejected"
    assert reason in page.parse_error
    assert page.record is None
