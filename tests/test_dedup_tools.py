"""Smoke tests of the dedup evaluation and benchmark tools (small sizes; the real runs are
`make eval-dedup` and `make bench-dedup`)."""

from __future__ import annotations

import random
import time

from pipeline.dedup import DedupConfig, link_records
from pipeline.devtools import bench_dedup, eval_dedup
from pipeline.devtools.ctgov import load_studies


def test_perturbations_change_text_but_keep_digits():
    rng = random.Random(5)
    title = "Phase 2 Study of IL3 CAR-T Cells in Relapsed Acute Myeloid Leukemia"
    outs = {eval_dedup.perturb_title(title, rng) for _ in range(40)}
    assert len(outs) > 10
    for out in outs:
        assert set("0123456789") & set(out) <= set("23")  # digits never invented
    assert eval_dedup.truncate(title, random.Random(1)) != title
    assert eval_dedup.typo("Leukemia", random.Random(2)) != "Leukemia"


def test_sibling_is_a_different_trial_that_looks_alike():
    study = next(s for s in load_studies() if s.record.criteria and s.record.brief_title)
    sib = eval_dedup.sibling_record(study.record, random.Random(3), "NCT90000001")
    assert sib.nct_id == "NCT90000001"
    assert sib.lead_sponsor == study.record.lead_sponsor
    assert sib.brief_title != study.record.brief_title
    assert sib.criteria != study.record.criteria


def test_eval_on_a_small_labelled_set_meets_targets():
    studies = load_studies()[:25]
    pages = eval_dedup.build_eval_set(studies, seed=3, siblings=8)
    assert {p.site for p in pages} >= {"veeva", "clinconnect"}
    assert any(not p.nct_shown for p in pages)
    result = link_records([p.item for p in pages], DedupConfig())
    scored = eval_dedup.score_round(pages, result)
    assert scored.seeds_apart
    assert scored.id_pairs.recall == 1.0
    assert scored.no_id_pairs.true > 20
    assert scored.no_id_pairs.precision >= 0.99
    assert scored.no_id_pairs.recall >= 0.9


def test_benchmark_smoke_20k_records():
    t0 = time.perf_counter()
    records, truth = bench_dedup.make_records(20_000, seed=1)
    assert len(records) == 20_000
    no_id = sum(1 for r in records if not r.record.nct_id and not r.record.identifiers)
    assert 0.25 < no_id / len(records) < 0.35
    t1 = time.perf_counter()
    result = link_records(records, DedupConfig())
    elapsed = time.perf_counter() - t1
    quality = bench_dedup._pair_quality(result.clusters, truth)
    assert quality["precision"] >= 0.99 and quality["recall"] >= 0.98
    assert result.stats.pairs_scored < 20 * len(records)  # blocked, near-linear
    assert elapsed < 30, f"20k records took {elapsed:.1f}s (generation {t1 - t0:.1f}s)"
