"""Parallel parse into staged Parquet batches, the single-writer rebuild, fsspec raw roots."""

import datetime as dt
import uuid
from pathlib import Path

import duckdb
import pytest

from pipeline import run
from pipeline.db.connection import open_warehouse
from pipeline.db.schema import ALL_TABLES
from pipeline.devtools import bench_corpus as bc
from pipeline.parse_batches import (
    PageRef,
    parse_pages,
    pool,
    read_ref,
    read_staged,
    shards,
    stage,
)
from pipeline.rawstore import RawStore
from pipeline.rebuild import load_staged, rebuild

TRIALS = 12  # 24 pages, both sites, every markup variant
BASES = 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    refs = bc.write_corpus(root, TRIALS, bases=BASES)
    return root, refs


@pytest.fixture(scope="module")
def workers2():
    ex = pool(2)
    yield ex
    ex.shutdown()


def tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ALL_TABLES}


def test_corpus_is_varied_and_deterministic(corpus, tmp_path):
    root, refs = corpus
    assert len(refs) == 2 * TRIALS
    assert {r.source for r in refs} == {"veeva", "clinconnect"}
    assert len({r.url for r in refs}) == len(refs)
    assert len({r.content_sha256 for r in refs}) == len(refs)
    again = bc.write_corpus(tmp_path, TRIALS, bases=BASES)
    assert again == refs
    sizes = [len(RawStore(root).get(r.source, r.content_sha256)) for r in refs]
    assert sum(sizes) / len(sizes) > 35_000  # ~50-60 KB pages, not toy ones


def test_staged_batches_are_byte_identical_with_one_or_two_workers(corpus, tmp_path, workers2):
    root, refs = corpus
    serial = list(stage(refs, root, tmp_path / "serial", workers=1, shard_pages=5))
    parallel = list(stage(refs, root, tmp_path / "parallel", executor=workers2, shard_pages=5))
    assert [b.index for b in parallel] == list(range(len(shards(refs, 5))))
    assert [b.pages for b in serial] == [5, 5, 5, 5, 4]
    for a, b in zip(serial, parallel, strict=True):
        assert Path(a.path).read_bytes() == Path(b.path).read_bytes()
        assert a.by_status == b.by_status


def test_staged_pages_round_trip_to_what_parse_page_gives(corpus, tmp_path):
    root, refs = corpus
    (batch,) = stage(refs[:4], root, tmp_path, shard_pages=10)
    staged = read_staged(batch.path)
    store = RawStore(root)
    direct = [run.safe_parse(read_ref(r, store)) for r in refs[:4]]  # type: ignore[arg-type]
    assert staged == direct
    assert all(p.record is not None and p.record.nct_id in (None, bc.nct_for(i // 2))
               for i, p in enumerate(staged))


def test_missing_object_is_a_rejected_page_with_the_reason(tmp_path):
    ref = PageRef("https://ctv.veeva.com/study/gone", "veeva", "ab" * 32, dt.datetime(2026, 1, 1))
    (batch,) = stage([ref], tmp_path / "raw", tmp_path / "staging")
    (page,) = read_staged(batch.path)
    assert page.parse_status == "rejected"
    assert page.parse_error.startswith("raw store: raw object")


def test_parallel_parse_new_pages_equals_serial(corpus, workers2):
    root, refs = corpus
    store = RawStore(root)
    raws = tuple(read_ref(r, store) for r in refs)
    raw = run.RawBatch(("t",), raws)
    serial = run.parse_new_pages(raw, {}, "v")
    assert list(parse_pages(list(raws), executor=workers2, chunk=5)) == list(serial.pages)


def test_rebuild_gives_the_same_warehouse_as_ingest_and_resumes(corpus, tmp_path):
    root, refs = corpus
    store = RawStore(root)
    ingested = open_warehouse(tmp_path / "ingest.duckdb")
    run.ingest_batch(run.RawBatch(("t",), tuple(read_ref(r, store) for r in refs)), ingested, "x")
    rebuilt = open_warehouse(tmp_path / "rebuild.duckdb")
    result = rebuild(refs, rebuilt, root, shard_pages=5, load_pages=10)
    assert result.pages_loaded == len(refs) and result.load_batches == 3
    assert result.trials == TRIALS
    assert tables(rebuilt) == tables(ingested)
    again = rebuild(refs, rebuilt, root, shard_pages=5, load_pages=10)
    assert again.pages_loaded == 0 and again.pages_skipped == len(refs)
    assert tables(rebuilt) == tables(ingested)


def test_two_worker_rebuild_equals_serial(corpus, tmp_path):
    root, refs = corpus
    one = open_warehouse(tmp_path / "one.duckdb")
    two = open_warehouse(tmp_path / "two.duckdb")
    rebuild(refs, one, root, workers=1, shard_pages=4, load_pages=8)
    result = rebuild(refs, two, root, workers=2, shard_pages=4, load_pages=8)
    assert result.peak_rss_worker > 0
    assert tables(one) == tables(two)


def test_load_staged_batches_written_elsewhere(corpus, tmp_path):
    root, refs = corpus
    batches = list(stage(refs, root, tmp_path / "staging", shard_pages=7))
    conn = open_warehouse(tmp_path / "w.duckdb")
    result = load_staged(conn, [b.path for b in batches], load_pages=100)
    assert result.pages == result.pages_loaded == len(refs)
    assert result.trials == TRIALS


@pytest.mark.parametrize("scheme", ["memory", "local"])
def test_raw_store_on_fsspec_urls_feeds_the_parse(corpus, tmp_path, scheme):
    root, refs = corpus
    url = f"memory://raw-{uuid.uuid4().hex}" if scheme == "memory" else f"local://{tmp_path}/raw"
    remote = RawStore(url)
    assert not remote.is_local
    local = RawStore(root)
    for r in refs[:6]:
        stored = remote.put(r.source, local.get(r.source, r.content_sha256))
        assert stored.sha256 == r.content_sha256 and stored.path.startswith(f"{scheme}://")
    assert sorted(remote.iter_shas("veeva")) == sorted(r.content_sha256 for r in refs[:6] if r.source == "veeva")
    # memory:// lives in this process only, so it is parsed in-process; local:// by a worker too
    (batch,) = stage(refs[:6], url, tmp_path / "staging", shard_pages=6)
    expected = [run.safe_parse(read_ref(r, local)) for r in refs[:6]]  # type: ignore[arg-type]
    assert read_staged(batch.path) == expected
    conn = open_warehouse(tmp_path / "w.duckdb")
    assert rebuild(refs[:6], conn, url, shard_pages=3).trials == 3


def test_file_refs_are_read_from_disk(tmp_path):
    page = tmp_path / "page.html"
    raw = next(bc.iter_pages(1, bases=1))
    page.write_bytes(raw.content)
    ref = PageRef(page.resolve().as_uri(), None, None, None)
    (batch,) = stage([ref], None, tmp_path / "staging")
    (parsed,) = read_staged(batch.path)
    assert parsed.url == page.resolve().as_uri() and parsed.record is not None


def test_reparse_on_two_workers_gives_the_same_rows(corpus, tmp_path):
    from pipeline.reparse import reparse

    root, refs = corpus
    path = tmp_path / "w.duckdb"
    conn = open_warehouse(path)
    rebuild(refs, conn, root)
    before = tables(conn)
    conn.execute("UPDATE pages SET parser_version = 'old'")
    conn.close()
    result = reparse(path, root, workers=2, batch_size=500)
    assert result.reparsed == len(refs) and not result.unavailable
    conn = open_warehouse(path)
    assert tables(conn) == before


def test_a_worker_stage_makes_no_reference_cycles_and_leaves_the_gc_as_it_was():
    """Workers parse with the cyclic GC paused (parse_batches.cyclic_gc_paused): that is only
    sound while parsing leaves no cycles behind for it to collect."""
    import gc

    from pipeline.ingest import read_pages
    from pipeline.parse_batches import parse_items, parsed_table, staged_table

    root = Path(__file__).resolve().parents[1]
    raws = [*bc.iter_pages(4, bases=4), *read_pages([root / "tests" / "fixtures" / "pages", root / "raw" / "sample"])]
    epoch = dt.datetime(1970, 1, 1)
    expected = parsed_table(parse_items(raws, epoch), profiles=True)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        pages, table = staged_table(raws, epoch)
        del pages, table
        found = gc.collect()
        kinds = sorted({type(o).__name__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert (found, kinds) == (0, [])
    assert gc.isenabled()
    pages, table = staged_table(raws, epoch)
    assert len(pages) == len(raws) > 30 and table.equals(expected)
