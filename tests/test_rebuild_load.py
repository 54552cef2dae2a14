"""The rebuild's loader: profiles made by the parse workers, record JSON taken as staged, and
the whole-warehouse steps run once at the end -- and in every case the same rows as a load
that computes everything itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipeline import run
from pipeline.db import profiles
from pipeline.db.checks import run_checks
from pipeline.db.connection import open_warehouse
from pipeline.db.load import LoadRefused, finish_rebuild
from pipeline.db.schema import ALL_TABLES
from pipeline.ingest import read_pages
from pipeline.models import Criterion, Intervention, TrialRecord
from pipeline.parse_batches import PageRef, read_staged_table, stage, write_staged
from pipeline.rebuild import load_staged

ROOT = Path(__file__).resolve().parents[1]
# Real captures (CAR-T seeds: therapies with dose levels) and the fixture pages.
PATHS = [ROOT / "raw" / "sample", ROOT / "tests" / "fixtures" / "pages"]


def tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ALL_TABLES}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The reference: every page parsed and loaded in one run, profiles made by the loader."""
    path = tmp_path_factory.mktemp("ingest") / "w.duckdb"
    run.ingest(PATHS, path)
    conn = open_warehouse(path)
    try:
        yield tables(conn)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The same pages staged by the parse stage, 7 per shard."""
    refs = [PageRef(p.resolve().as_uri(), None, None, None)
            for p in sorted({Path(u.url.removeprefix("file://")) for u in read_pages(PATHS)})]
    folder = tmp_path_factory.mktemp("staging")
    return [b.path for b in stage(refs, None, folder, shard_pages=7)]


def test_staged_profiles_give_the_rows_the_loader_makes(ingested, staged, tmp_path, monkeypatch):
    used: list[int] = []
    original = profiles._precomputed_frames

    def spy(pre, digests):
        used.append(len(digests))
        return original(pre, digests)

    monkeypatch.setattr(profiles, "_precomputed_frames", spy)
    conn = open_warehouse(tmp_path / "w.duckdb")
    result = load_staged(conn, staged, load_pages=10)  # several batches, whole-warehouse steps at the end
    assert result.load_batches > 2
    assert sum(used) > 10  # most trials took the workers' rows
    assert ingested["dose_levels"] and ingested["eligibility_constraints"]  # the corpus exercises both
    assert tables(conn) == ingested
    assert all(o.passed for o in run_checks(conn)), [o.summary for o in run_checks(conn) if not o.passed]


def test_profiles_from_other_extractor_versions_are_ignored(ingested, staged, tmp_path):
    forged = []
    for i, path in enumerate(staged):
        table = read_staged_table(path)
        n = table.num_rows
        versions = pa.array(["0/0" if v else None for v in table.column("profile_versions").to_pylist()],
                            type=pa.string())
        table = table.set_column(table.schema.get_field_index("profile_versions"), "profile_versions", versions)
        for name in ("profile_eligibility_constraints", "profile_therapies"):  # wrong rows, were they used
            idx = table.schema.get_field_index(name)
            table = table.set_column(idx, name, pa.array([[]] * n, type=table.schema.field(name).type))
        out = tmp_path / f"part-{i:06d}.parquet"
        write_staged(table, out)
        forged.append(out)
    conn = open_warehouse(tmp_path / "w.duckdb")
    load_staged(conn, forged)
    assert tables(conn) == ingested


def _record(criteria: tuple[Criterion, ...], interventions: tuple[Intervention, ...], title: str) -> TrialRecord:
    return TrialRecord(nct_id="NCT00000001", brief_title=title, criteria=criteria, interventions=interventions)


def test_picks_need_the_golden_records_exact_inputs():
    age = (Criterion("inclusion", 1, None, "Age 18 to 75 years"),)
    ecog = (Criterion("inclusion", 1, None, "ECOG 0-1"), Criterion("exclusion", 1, None, "Pregnancy"))
    car = (Intervention("BIOLOGICAL", "CD19 CAR-T cells", "1x10^6 CAR-T cells/kg"),)
    a, b = _record(age, (), "Study A"), _record(ecog, car, "Study A")
    table = pa.table({"page_id": ["a", "b"], **{k: pa.array(v, type=f.type) for (k, v), f in zip(
        profiles.page_profile_columns([a, b]).items(), profiles.PAGE_PROFILE_FIELDS)}})
    pages = profiles.PageProfiles.of(table)
    assert pages.rows == {"a": 0, "b": 1}
    mixed = dataclasses.replace(a, interventions=car)  # criteria of page a, interventions of page b
    other = dataclasses.replace(a, brief_title="Another title")  # text of neither page
    pre = profiles.pick_page_profiles(
        pages, [("T1", mixed, ("a", "b")), ("T2", other, ("a", "b")), ("T3", b, ("b",))], {"a": a, "b": b})
    assert pre.picks == {"T1": (0, 1), "T3": (1, 1)}


def test_criteria_read_back_in_warehouse_order():
    crit = (Criterion("exclusion", 1, None, "x"), Criterion("inclusion", 2, None, "b"),
            Criterion("inclusion", 1, None, "a"))
    record = _record(crit, (), "t")
    assert profiles.criteria_input(record) == (crit[2], crit[1], crit[0])
    repeated = _record((crit[1], crit[1]), (), "t")
    assert profiles.criteria_input(repeated) is None  # the loader profiles such a record itself
    assert profiles.page_profile_columns([repeated])["profile_versions"] == [None]


def test_finish_rebuild_changes_nothing_on_a_sound_warehouse(staged, tmp_path):
    conn = open_warehouse(tmp_path / "w.duckdb")
    load_staged(conn, staged)
    before = tables(conn)
    result = finish_rebuild(conn)
    assert result.trials_profiled == 0 and tables(conn) == before


def test_finish_rebuild_refuses_a_broken_warehouse_and_rolls_back(staged, tmp_path):
    conn = open_warehouse(tmp_path / "w.duckdb")
    load_staged(conn, staged)
    (tid,), = conn.execute("SELECT trial_id FROM trials ORDER BY 1 LIMIT 1").fetchall()
    conn.execute("UPDATE trials SET last_seen_at = NULL WHERE trial_id = ?", [tid])
    conn.execute("INSERT INTO eligibility_flags VALUES (?, 'inclusion', 9999, 'pregnancy')", [tid])
    before = tables(conn)
    with pytest.raises(LoadRefused, match="foreign_keys"):
        finish_rebuild(conn)
    assert tables(conn) == before  # presence not refreshed either: the whole step rolled back


def test_a_rebuild_holds_duckdb_to_its_memory_cap_and_restores_the_setting(staged, tmp_path, monkeypatch):
    import pipeline.rebuild as rebuild_module

    conn = open_warehouse(tmp_path / "w.duckdb")
    setting = "SELECT current_setting('memory_limit')"
    before = conn.execute(setting).fetchall()  # DuckDB's default
    during: list[str] = []
    original = rebuild_module.StagedLoader.flush

    def spy(self, *, last=False):
        during.append(self.conn.execute(setting).fetchall()[0][0])
        original(self, last=last)

    monkeypatch.setattr(rebuild_module.StagedLoader, "flush", spy)
    result = load_staged(conn, staged, load_pages=10, duckdb_memory="500MB")
    assert result.trials > 0
    assert during and set(during) == {"476.8 MiB"}  # 500 MB as DuckDB prints it
    assert conn.execute(setting).fetchall() == before


def test_staged_json_take_gives_the_asked_rows_in_the_asked_order():
    from pipeline.parse_batches import StagedJson

    texts = ['{"a":1}', None, '{"a":3}', '{"a":4}', None, '{"a":6}']
    column = pa.chunked_array([pa.array(texts[:3]), pa.array(texts[3:])])
    table = pa.table({"page_id": [f"p{i}" for i in range(6)], "record": column})
    staged = StagedJson.of(table)
    assert "p0" in staged and "p1" not in staged and len(staged) == 4  # null records are not staged
    for ids in (["p0", "p2", "p3", "p5"], ["p2", "p5"], ["p5", "p0", "p3"], []):
        assert staged.take(ids).to_pylist() == [staged[i] for i in ids]
    every = pa.table({"page_id": ["a", "b"], "record": pa.chunked_array([['{"x":1}'], ['{"x":2}']])})
    assert StagedJson.of(every).take(["a", "b"]).to_pylist() == ['{"x":1}', '{"x":2}']
