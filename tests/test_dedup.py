"""The deduplication engine (pipeline.dedup): exact keys, fuzzy matching, rules, decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import pytest

from pipeline.dedup import (
    DedupConfig,
    DedupInput,
    Level,
    config_from_dict,
    config_to_dict,
    inputs_from_parsed,
    link_records,
    registry_ids,
)
from pipeline.dedup.keys import normalize_sponsor, record_ncts
from pipeline.dedup.scoring import title_diff
from pipeline.devtools.ctgov import CORPUS_DIR, load_file, load_records
from pipeline.ingest import read_page_file
from pipeline.models import Contact, Criterion, Identifier, Location, TrialRecord
from pipeline.parse import parse_page

SEEDS = Path(__file__).resolve().parents[1] / "raw" / "sample" / "seeds"
T0 = dt.datetime(2025, 1, 1)


def item(key: str, *, org: str | None = None, ids: tuple[Identifier, ...] = (), url: str | None = None,
         source: str = "veeva", **fields) -> DedupInput:
    idents = tuple(ids) + ((Identifier("org_study_id", org),) if org else ())
    return DedupInput(key, TrialRecord(identifiers=idents, **fields), source, T0, url)


def cluster_of(result, key: str) -> tuple[str, ...]:
    return result.clusters[result.link_map()[key].cluster]


def together(result, *keys: str) -> bool:
    return len({result.link_map()[k].cluster for k in keys}) == 1


CRITERIA = tuple(
    Criterion("inclusion", i, None, text) for i, text in enumerate((
        "Histologically confirmed CD123 positive acute myeloid leukemia",
        "Relapsed or refractory disease after at least two lines of therapy",
        "ECOG performance status 0 to 2 and adequate organ function",
    ), start=1)
)
TRIAL = TrialRecord(
    brief_title="IL3 CAR-T Cell Therapy for Patients With CD123 Positive Relapsed and/or Refractory Acute Myeloid Leukemia",
    lead_sponsor="Zhejiang University",
    phases=("EARLY_PHASE1",),
    criteria=CRITERIA,
    contacts=(Contact("central_contact", "Yongxian Hu"),),
    locations=(Location("The First Affiliated Hospital, Zhejiang University", "Hangzhou", "Zhejiang", "China"),),
)


# --------------------------------------------------------------------------- exact keys


@pytest.mark.parametrize("nct", ["NCT04599543", "nct04599543", "NCT 0459 9543", "Nct-04599543"])
def test_nct_ids_are_normalized(nct):
    assert record_ncts(TrialRecord(nct_id=nct)) == ("NCT04599543", ())


def test_pages_sharing_an_nct_id_in_any_spelling_or_place_are_one_cluster():
    result = link_records([
        item("a", nct_id="nct04599543", brief_title="IL3 CAR-T"),
        item("b", nct_id="NCT 0459 9543", brief_title="Something else entirely"),
        item("c", ids=(Identifier("nct", "NCT-04599543"),), brief_title="Another title"),
        item("d", url="https://clinconnect.io/trials/NCT04599543", source="clinconnect"),
        item("e", nct_id="NCT05563545", brief_title="IL3 CAR-T"),
    ])
    assert cluster_of(result, "a") == ("a", "b", "c", "d")
    assert cluster_of(result, "e") == ("e",)
    links = result.link_map()
    assert {links[k].method for k in "abcd"} == {"nct"}
    assert links["d"].via == "nct:NCT04599543"
    assert links["e"].method == "new" and links["e"].matched_key is None


def test_nct_aliases_join_the_trial_that_lists_them():
    result = link_records([
        item("new", nct_id="NCT04599543", ids=(Identifier("nct_alias", "NCT00000001"),)),
        item("old", nct_id="NCT00000001"),
    ])
    assert together(result, "new", "old")
    assert result.refused == ()


def test_sponsor_study_id_links_only_with_the_same_normalized_sponsor():
    result = link_records([
        item("a", org="CD123-001", lead_sponsor="Zhejiang University", brief_title="Trial one"),
        item("b", org="cd123 001", lead_sponsor="ZHEJIANG UNIVERSITY, Inc.", brief_title="Different words"),
        item("c", org="CD123-001", lead_sponsor="Chongqing Precision Biotech", brief_title="Unrelated study"),
    ])
    assert cluster_of(result, "a") == ("a", "b")
    assert result.link_map()["b"].method == "org_id"
    assert cluster_of(result, "c") == ("c",)


def test_registry_ids_link_but_institution_and_grant_numbers_do_not():
    result = link_records([
        item("a", ids=(Identifier("secondary", "EudraCT 2020-001234-56"),), lead_sponsor="A", brief_title="Alpha trial of X"),
        item("b", ids=(Identifier("secondary", "2020-001234-56"),), lead_sponsor="B", brief_title="Zeta study of Y"),
        item("c", ids=(Identifier("secondary", "FWA00015357"),), lead_sponsor="Han Xu", brief_title="COVID-19 biologics mix"),
        item("d", ids=(Identifier("secondary", "FWA00015357"),), lead_sponsor="Han Xu", brief_title="Antigen presentation proof of concept"),
    ])
    assert cluster_of(result, "a") == ("a", "b")
    assert result.link_map()["a"].method == "secondary_id"
    assert not together(result, "c", "d")


@pytest.mark.parametrize("text,key", [
    ("2020-001234-56", "eudract:2020-001234-56"),
    ("EUCTR2020-001234-56-DE", "eudract:2020-001234-56"),
    ("2022-500123-45-00", "euct:2022-500123-45-00"),
    ("ChiCTR2000031234", "chictr:CHICTR2000031234"),
    ("ISRCTN 12345678", "isrctn:ISRCTN12345678"),
    ("UTN: U1111-1251-8195", "utn:U1111-1251-8195"),
    ("CTRI/2020/05/025123", "ctri:CTRI202005025123"),
])
def test_registry_numbers_are_recognized(text, key):
    assert registry_ids(text) == [key]


@pytest.mark.parametrize("text", ["IND 28299", "FWA00015357", "IRB00009424", "CD123-001", "NCT04599543"])
def test_other_ids_are_not_registry_numbers(text):
    assert registry_ids(text) == []


def test_site_ids_link_pages_of_one_site():
    result = link_records([
        item("a", ids=(Identifier("veeva_slug", "il3-car-t-cell-therapy"),), brief_title="IL3 CAR-T"),
        item("b", ids=(Identifier("veeva_slug", "il3-car-t-cell-therapy"),), brief_title="Renamed later"),
    ])
    assert together(result, "a", "b")
    assert result.link_map()["b"].method == "url"


def test_normalize_sponsor_drops_legal_forms_and_expands_abbreviations():
    assert normalize_sponsor("Zhejiang Univ., Inc.") == normalize_sponsor("ZHEJIANG UNIVERSITY") == "zhejiang university"


# --------------------------------------------------------------------------- the NCT rule


def test_two_nct_ids_never_merge_even_when_an_id_less_page_bridges_them():
    same = dict(brief_title=TRIAL.brief_title, lead_sponsor="Zhejiang University", criteria=CRITERIA)
    result = link_records([
        item("a", nct_id="NCT04599543", org="CD123-001", **same),
        item("b", nct_id="NCT05563545", ids=(Identifier("veeva_slug", "il3-car-t"),), **same),
        # shares the org id with a and the slug with b, and the title with both
        item("c", org="CD123-001", ids=(Identifier("veeva_slug", "il3-car-t"),), **same),
        # no id at all, identical title: a fuzzy match for both
        item("d", source="clinconnect", **same),
    ])
    assert not together(result, "a", "b")
    by_key = {"a": "NCT04599543", "b": "NCT05563545"}
    for cluster in result.clusters:
        assert len({by_key[k] for k in cluster if k in by_key}) <= 1
    refused = [r for r in result.refused if r.reason == "nct_conflict"]
    assert refused and any(r.method == "url" for r in refused)
    assert "NCT04599543" in refused[0].detail and "NCT05563545" in refused[0].detail


def test_a_page_matching_two_nct_trials_equally_well_goes_to_review():
    base = dict(lead_sponsor="Scentech Medical", criteria=CRITERIA, locations=TRIAL.locations)
    result = link_records([
        item("a", nct_id="NCT04602871", brief_title="Early Detection of COVID-19 Using Breath Analysis in Adults", **base),
        item("b", nct_id="NCT04602884", brief_title="Early Detection of COVID-19 Using Breath Analysis in Children", **base),
        item("x", source="clinconnect", brief_title="Early Detection of COVID-19 Using Breath Analysis…", **base),
    ])
    assert result.link_map()["x"].method == "new"
    paired = {frozenset((c.key_a, c.key_b)) for c in result.candidates}
    assert {frozenset("ax"), frozenset("bx")} <= paired


def test_a_fuzzy_chain_does_not_pull_in_a_sibling_study_whose_pages_conflict():
    """x (title cut short) matches trial a and its sibling study b; a and b disagree on the
    sponsor's study id, so b must not end up in a's cluster through x."""
    base = dict(lead_sponsor="Zhejiang University", criteria=CRITERIA, contacts=TRIAL.contacts,
                locations=TRIAL.locations, phases=TRIAL.phases)
    sibling_title = TRIAL.brief_title.replace("Acute Myeloid Leukemia", "Chronic Myelomonocytic Leukemia")
    inputs = [
        item("a", nct_id="NCT04599543", org="CD123-001", brief_title=TRIAL.brief_title, **base),
        item("b", org="CD123-002", brief_title=sibling_title, **base),
        item("x", source="clinconnect", brief_title=TRIAL.brief_title[:70] + "…", **base),
    ]
    result = link_records(inputs)
    assert together(result, "a", "x")
    assert not together(result, "a", "b")
    assert any(r.reason == "score_conflict" for r in result.refused)
    chained = link_records(inputs, DedupConfig(veto=()))
    assert together(chained, "a", "b", "x")


def test_links_form_one_tree_per_cluster():
    result = link_records(_mixed_inputs())
    links = result.link_map()
    for cluster in result.clusters:
        if len(cluster) == 1:
            assert links[cluster[0]].method == "new"
            continue
        edges = {frozenset((k, links[k].matched_key)) for k in cluster}
        assert len(edges) == len(cluster) - 1
        assert all(links[k].matched_key in cluster for k in cluster)
        for k in cluster:
            link = links[k]
            assert (link.score is not None) == (link.method == "fuzzy")
            assert (link.via is not None) == (link.method in ("nct", "secondary_id", "org_id", "url"))


# --------------------------------------------------------------------------- fuzzy matching


def _views(record: TrialRecord) -> tuple[TrialRecord, TrialRecord]:
    """The same trial as a Veeva page and as a ClinConnect page, neither showing an id."""
    veeva = dataclasses.replace(record, nct_id=None, identifiers=(), start_date=None,
                                first_submitted_date=None, completion_date=None, keywords=())
    clin = dataclasses.replace(record, nct_id=None, identifiers=(), conditions=(), interventions=(),
                               enrollment=None)
    return veeva, clin


@pytest.mark.parametrize("title", [
    "IL3 CAR-T CELL THERAPY FOR PATIENTS WITH CD123 POSITIVE RELAPSED AND/OR REFRACTORY ACUTE MYELOID LEUKEMIA",
    "IL3 CAR T Cell Therapy for Patients With CD123 Positive Relapsed and or Refractory Acute Myeloid Leukemia",
    "IL3 CAR-T Cell Therapy for Patients With CD123 Positive Relapsed and/or Refractroy Acute Myeloid Leukmia",
    "IL3 CAR-T Cell Therapy for Patients With CD123 Positive Relapsed…",
])
def test_same_trial_with_a_perturbed_title_and_no_id_links(title):
    veeva, clin = _views(TRIAL)
    result = link_records([
        DedupInput("v", veeva, "veeva", T0),
        DedupInput("c", dataclasses.replace(clin, brief_title=title, lead_sponsor="ZHEJIANG UNIV."), "clinconnect", T0),
    ])
    assert together(result, "v", "c")
    link = result.link_map()["c"]
    assert link.method == "fuzzy" and link.matched_key == "v"
    assert link.score is not None and link.score.weight >= DedupConfig().accept_threshold
    title = next(c for c in link.score.comparisons if c.name == "title")
    assert title.level != "missing" and title.weight > 0
    assert "title" in link.score.explain() and "criteria exact" in link.score.explain()


def test_corpus_record_rendered_view_links_across_sites():
    record = next(r for r in load_records() if r.criteria and r.locations and len(r.brief_title or "") > 40)
    veeva, clin = _views(record)
    result = link_records([DedupInput("v", veeva, "veeva", T0), DedupInput("c", clin, "clinconnect", T0)])
    assert together(result, "v", "c")


def _seed_pages():
    pages = {}
    for path in sorted(SEEDS.glob("*.txt")):
        parsed = parse_page(read_page_file(path))
        pages[path.name[:3]] = parsed
    return pages


def test_seed_hard_negatives_stay_apart():
    pages = _seed_pages()
    inputs = inputs_from_parsed(pages.values())
    result = link_records(inputs)
    key = {name: p.page_id for name, p in pages.items()}
    assert not together(result, key["000"], key["001"])  # CD123 CAR-NK vs CD123 IL3 CAR-T
    assert not together(result, key["001"], key["003"])  # two Zhejiang University AML trials
    assert not together(result, key["000"], key["003"])
    assert all(len(c) == 1 for c in result.clusters)


def test_seed_hard_negatives_stay_apart_without_ids_and_with_mirror_noise():
    pages = _seed_pages()
    inputs = []
    for name in ("000", "001", "003"):
        rec = pages[name].record
        stripped = dataclasses.replace(rec, nct_id=None, identifiers=())
        inputs.append(DedupInput(f"{name}-veeva", stripped, "veeva", T0))
        inputs.append(DedupInput(f"{name}-upper", dataclasses.replace(
            stripped, brief_title=(rec.brief_title or "").upper()), "clinconnect", T0))
    result = link_records(inputs)
    for name in ("000", "001", "003"):
        assert cluster_of(result, f"{name}-veeva") == (f"{name}-upper", f"{name}-veeva")


def test_covid_studies_with_near_identical_titles_stay_apart():
    studies = load_file(CORPUS_DIR / "aact" / "json_v1" / "covid-19-search.json", CORPUS_DIR)
    assert len(studies) == 100
    inputs = [
        DedupInput(f"s{i:03d}", dataclasses.replace(s.record, nct_id=None, identifiers=()), "veeva", T0)
        for i, s in enumerate(studies)
    ]
    result = link_records(inputs)
    assert len(result.clusters) == 100
    assert result.stats.pairs_scored < 100 * 99 // 2  # blocked, not all pairs


# --------------------------------------------------------------------------- review band, decisions, config


def _weak_pair() -> list[DedupInput]:
    """Same title and sponsor, nothing else shown: weight -6 + 9 + 4 = 7."""
    return [
        item("p", brief_title="Safety of Drug X in Adults", lead_sponsor="Acme Pharma"),
        item("q", brief_title="Safety of Drug X in Adults", lead_sponsor="Acme Pharma", source="clinconnect"),
    ]


def test_config_thresholds_change_outcomes():
    assert together(link_records(_weak_pair()), "p", "q")
    stricter = DedupConfig(accept_threshold=10.0)
    result = link_records(_weak_pair(), stricter)
    assert not together(result, "p", "q")
    assert [(c.key_a, c.key_b) for c in result.candidates] == [("p", "q")]
    assert result.candidates[0].weight == pytest.approx(7.0)
    dropped = link_records(_weak_pair(), DedupConfig(accept_threshold=10.0, reject_threshold=8.0))
    assert dropped.candidates == () and len(dropped.clusters) == 2


def test_comparison_levels_are_configuration():
    config = DedupConfig()
    softer_title = dataclasses.replace(config.title, levels=(Level("exact", 100.0, 2.0),))
    result = link_records(_weak_pair(), config.with_changes(title=softer_title))
    assert not together(result, "p", "q")


def test_candidate_band_produces_candidates_not_merges():
    result = link_records(_weak_pair(), DedupConfig(accept_threshold=7.5, reject_threshold=0.0))
    assert len(result.clusters) == 2
    (cand,) = result.candidates
    assert 0.0 <= cand.weight < 7.5 and 0 < cand.probability < 1
    assert {c.name for c in cand.comparisons if c.level != "missing"} >= {"title", "sponsor"}


def test_manual_reject_keeps_a_pair_apart_and_survives_reruns():
    decisions = {("q", "p"): False}
    for _ in range(2):
        result = link_records(_weak_pair(), decisions=decisions)
        assert not together(result, "p", "q")
        assert result.candidates == ()  # decided: not offered for review again


def test_manual_reject_also_blocks_a_transitive_join():
    pair = _weak_pair()
    third = item("r", brief_title="Safety of Drug X in Adults", lead_sponsor="Acme Pharma", org="X-1")
    result = link_records(pair + [third], decisions={("p", "q"): False})
    assert not together(result, "p", "q")


def test_manual_accept_joins_a_pair_that_shares_nothing():
    inputs = [item("m", brief_title="Alpha", lead_sponsor="A"), item("n", brief_title="Omega", lead_sponsor="B")]
    assert not together(link_records(inputs), "m", "n")
    result = link_records(inputs, decisions={("m", "n"): True})
    assert together(result, "m", "n")
    assert result.link_map()["n"].method == "manual"


def test_manual_accept_cannot_join_two_nct_ids():
    inputs = [item("m", nct_id="NCT00000001"), item("n", nct_id="NCT00000002")]
    result = link_records(inputs, decisions={("m", "n"): True})
    assert not together(result, "m", "n")
    assert [(r.method, r.reason) for r in result.refused] == [("manual", "nct_conflict")]


def test_a_reject_wins_over_an_accept_of_the_same_pair():
    result = link_records(_weak_pair(), decisions={("p", "q"): True, ("q", "p"): False})
    assert not together(result, "p", "q")


def test_config_round_trips_through_plain_data():
    config = DedupConfig(accept_threshold=9.0, max_block_size=40, veto=("org_id",))
    assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(ValueError):
        DedupConfig(accept_threshold=1.0, reject_threshold=2.0)
    with pytest.raises(ValueError):
        DedupConfig(blocking_passes=("nope",))


# --------------------------------------------------------------------------- determinism, blocking, helpers


def _mixed_inputs() -> list[DedupInput]:
    records = load_records()[:40]
    rng = random.Random(3)
    out = []
    for i, rec in enumerate(records):
        veeva, clin = _views(rec)
        out.append(DedupInput(f"v{i:02d}", rec if i % 3 else veeva, "veeva", T0))
        title = (rec.brief_title or "").upper() if rng.random() < 0.5 else rec.brief_title
        out.append(DedupInput(f"c{i:02d}", dataclasses.replace(clin, brief_title=title), "clinconnect", T0))
    return out


def test_output_does_not_depend_on_input_order():
    inputs = _mixed_inputs()
    first = link_records(inputs)
    shuffled = inputs[:]
    random.Random(11).shuffle(shuffled)
    second = link_records(shuffled)
    assert first.clusters == second.clusters
    assert first.links == second.links
    assert first.candidates == second.candidates
    assert first.refused == second.refused
    assert sum(1 for i in range(40) if together(first, f"v{i:02d}", f"c{i:02d}")) >= 38


def test_oversized_blocks_are_skipped_not_scored_pairwise():
    inputs = [item(f"k{i:03d}", brief_title="Observational registry of outcomes", lead_sponsor=f"Sponsor {i}")
              for i in range(80)]
    result = link_records(inputs, DedupConfig(max_block_size=30))
    assert result.stats.blocks_skipped >= 1
    assert result.stats.pairs_scored == 0


def test_inputs_from_parsed_skips_rejected_pages():
    pages = list(_seed_pages().values())
    rejected = dataclasses.replace(pages[0], parse_status="rejected", record=None, page_id="zzz")
    inputs = inputs_from_parsed(pages + [rejected])
    assert [i.key for i in inputs] == [p.page_id for p in pages]
    assert all(i.url == p.url and i.source == p.source for i, p in zip(inputs, pages))


@pytest.mark.parametrize("a,b,longest,digit", [
    ("acutemyeloidleukemia", "acutemyeloidleukemia", 0, False),
    ("acutemyeloidleukemia", "acuetmyeloidleukemia", 2, False),      # swapped letters
    ("acutemyeloidleukemia", "acutemyeloidleuk", 0, False),          # cut short
    ("cohortstudyofpioglitazone", "cohortmaintenanceofpioglitazone", 10, False),  # another word
    ("cabarruscountycovid", "cabarrsucontycovid", 3, False),         # typos in neighbouring words
    ("phase2studyofx", "phase3studyofx", 1, True),                   # another number
    ("covid2019registry", "covid20", 0, False),                      # a number cut off is no change
])
def test_title_diff_tells_typos_from_changed_words_and_numbers(a, b, longest, digit):
    assert title_diff(a, b) == (longest, digit)
