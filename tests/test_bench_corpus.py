"""The benchmark's synthetic trials are distinct trials: no dedup key repeats across them."""

from collections import Counter

from pipeline.dedup.keys import normalize_sponsor, record_keys
from pipeline.devtools import bench_corpus as bc
from pipeline.parse import parse_page


def _parsed_trials(bases: int, copies: int):
    pages = [parse_page(r) for r in bc.iter_pages(copies * bases, bases=bases)]
    records = [p.record for p in pages if p.record is not None]
    assert len(records) == len(pages) == 2 * copies * bases
    return [(i // 2, record) for i, record in enumerate(records)]  # both sites' pages in a row


def test_generated_trials_share_no_dedup_key_and_each_trial_has_its_two_pages():
    bases = 21  # bases 12, 19 and 20 carry registry numbers among their secondary ids
    owners: dict[str, set[int]] = {}
    for trial, record in _parsed_trials(bases, copies=2):  # each base used twice
        for _, key in record_keys(record, normalize_sponsor(record.lead_sponsor)):
            owners.setdefault(key, set()).add(trial)
    shared = {key: trials for key, trials in owners.items() if len(trials) > 1}
    assert shared == {}
    kinds = Counter(key.split(":", 1)[0] for key in owners)
    assert kinds["org"] == 2 * bases  # the sponsor's own id: one per trial, on both its pages
    assert sum(n for kind, n in kinds.items() if kind not in ("org", "site")) > 0  # registry numbers


def test_generated_trials_share_no_raw_secondary_id():
    owners: dict[tuple[str, str], set[int]] = {}
    for trial, record in _parsed_trials(bases=6, copies=2):
        for ident in record.identifiers:
            if ident.id_type != "veeva_slug":
                owners.setdefault((ident.id_type, ident.id_value), set()).add(trial)
    assert {key: t for key, t in owners.items() if len(t) > 1} == {}
