"""The benchmark's synthetic trials are distinct trials: no registry id repeats across them."""

from collections import Counter

from pipeline.devtools import bench_corpus as bc
from pipeline.parse import parse_page


def test_generated_trials_share_no_registry_id_and_each_trial_has_its_two_pages():
    bases = 6
    pages = [parse_page(r) for r in bc.iter_pages(3 * bases, bases=bases)]  # each base used 3 times
    records = [p.record for p in pages if p.record is not None]
    assert len(records) == len(pages) == 6 * bases
    owners: dict[tuple[str, str], set[int]] = {}
    for i, record in enumerate(records):
        trial = i // 2  # iter_pages yields both sites' pages of a trial in a row
        for ident in record.identifiers:
            if ident.id_type != "veeva_slug":
                owners.setdefault((ident.id_type, ident.id_value), set()).add(trial)
    shared = {key: trials for key, trials in owners.items() if len(trials) > 1}
    assert shared == {}
    types = Counter(t for t, _ in owners)
    assert types["org_study_id"] == 3 * bases  # one per trial, on both of its pages
