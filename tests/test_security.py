"""Security: `trials sql` is sandboxed, the crawler stays on the source's hosts whatever
pages and redirects say, URL text never becomes a file name, sizes are capped on the wire
and after decompression, and nothing secret is needed to run.

Every web test runs real servers on 127.0.0.1 (a "foreign" one on another port, and the
mirror itself reached by another name, `localhost`).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main
from pipeline.db.connection import SANDBOX_SETTINGS, open_warehouse
from pipeline.devtools.mirror import Faults, Mirror, MirrorServer, generate_pages
from pipeline.rawstore import RawStore
from pipeline.run import crawl_into
from pipeline.scrape import CrawlConfig

REPO = Path(__file__).resolve().parents[1]
FAST = CrawlConfig(rate=500, concurrency=2, backoff_base_s=0.01, backoff_max_s=0.05, max_retries=1)


# --- trials sql: read-only, no external access, settings locked ----------------------------------

@pytest.fixture
def loaded(tmp_path, seeds_dir, capsys, clean_env) -> Path:
    warehouse = tmp_path / "w.duckdb"
    assert main(["ingest", str(seeds_dir), "--warehouse", str(warehouse)]) == 0
    capsys.readouterr()
    return warehouse


def _snapshot(warehouse: Path) -> dict:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()]
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}
    finally:
        conn.close()


def _attempts(tmp: Path) -> list[tuple[str, str, str]]:
    """(name, SQL, a word the refusal must contain).  Files named here must never appear."""
    secret = tmp / "secret.csv"
    secret.write_text("password\nhunter2\n")
    other = tmp / "other.duckdb"
    duckdb.connect(str(other)).close()
    return [
        ("attach-file", f"ATTACH '{other}' AS o", "ATTACH"),
        ("attach-new-file", f"ATTACH '{tmp / 'new.duckdb'}' AS n", "ATTACH"),
        ("attach-memory", "ATTACH ':memory:' AS m", "ATTACH"),
        ("copy-to-csv", f"COPY trials TO '{tmp / 'out.csv'}'", "COPY"),
        ("copy-to-parquet", f"COPY (SELECT * FROM pages) TO '{tmp / 'out.parquet'}' (FORMAT parquet)", "COPY"),
        ("export-database", f"EXPORT DATABASE '{tmp / 'dump'}'", "EXPORT"),
        ("install", "INSTALL httpfs", "LOAD"),
        ("load", "LOAD httpfs", "LOAD"),
        ("read_csv", f"SELECT * FROM read_csv('{secret}')", "refused"),
        ("bare-file", f"SELECT * FROM '{secret}'", "refused"),
        ("read_parquet", f"SELECT * FROM read_parquet('{tmp / 'x.parquet'}')", "refused"),
        ("read_text", f"SELECT * FROM read_text('{secret}')", "refused"),
        ("read_blob", "SELECT * FROM read_blob('/etc/passwd')", "refused"),
        ("read_json-url", "SELECT * FROM read_json('http://127.0.0.1:9/x.json')", "refused"),
        ("glob", "SELECT * FROM glob('/etc/*')", "refused"),
        ("set-external-access", "SET enable_external_access = true", "SET"),
        ("reset-external-access", "RESET enable_external_access", "SET"),
        ("unlock", "SET lock_configuration = false", "SET"),
        ("allowed-dirs", "SET allowed_directories = ['/']", "SET"),
        ("pragma", "PRAGMA enable_external_access = true", "SET"),
        ("pragma-call", "CALL enable_external_access(true)", "does not exist"),
        ("checkpoint-call", "PRAGMA enable_checkpoint_on_shutdown", "refused"),
        ("secret", "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')", "CREATE"),
        ("insert", "INSERT INTO keywords (trial_id, position, keyword) VALUES ('x', 1, 'y')", "INSERT"),
        ("update", "UPDATE trials SET brief_title = 'pwned'", "UPDATE"),
        ("delete", "DELETE FROM pages", "DELETE"),
        ("create-table", "CREATE TABLE evil AS SELECT 1", "CREATE"),
        ("drop", "DROP TABLE trials", "DROP"),
        ("two-statements", "SELECT 1; DROP TABLE trials", "DROP"),
    ]


def test_sql_refuses_every_escape_with_one_line(loaded, tmp_path, capsys):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    attempts = _attempts(sandbox)
    before = _snapshot(loaded)
    listing = sorted(p.name for p in sandbox.iterdir())
    for name, sql, word in attempts:
        assert main(["sql", sql, "--warehouse", str(loaded)]) == 1, name
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trials: error: "), (name, err)
        assert word in lines[0], (name, lines[0])
        assert "hunter2" not in out + err and "root:" not in out + err, name
    assert sorted(p.name for p in sandbox.iterdir()) == listing  # nothing written, attached or exported
    assert _snapshot(loaded) == before


def test_sql_still_answers_queries(loaded, capsys):
    assert main(["sql", "SELECT count(*) AS n FROM trials", "--warehouse", str(loaded), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "n"
    assert main(["sql", "SELECT current_setting('enable_external_access') AS x", "--warehouse", str(loaded),
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["x", "False"]


def test_sql_refusal_from_a_real_process(loaded, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "sql", f"COPY trials TO '{tmp_path / 'x.csv'}'",
         "--warehouse", str(loaded)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "refused" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_sandbox_settings_are_in_force(loaded):
    assert SANDBOX_SETTINGS == ("SET enable_external_access = false", "SET lock_configuration = true")
    conn = open_warehouse(loaded, read_only=True, sandboxed=True)
    try:
        settings = dict(conn.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())
        attached = conn.execute("SELECT database_name, readonly FROM duckdb_databases() "
                                "WHERE NOT internal AND database_name <> 'memory'").fetchall()
    finally:
        conn.close()
    assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                        "autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    assert attached == [("warehouse", True)]
    with pytest.raises(ValueError):
        open_warehouse(loaded, sandboxed=True)  # a sandbox is read-only or nothing


def test_sandbox_works_while_the_same_process_has_the_file_open(loaded, capsys):
    other = duckdb.connect(str(loaded), read_only=True)
    try:
        assert main(["sql", "SELECT count(*) AS n FROM trials", "--warehouse", str(loaded), "--format", "csv"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == "n"
        assert main(["sql", "COPY trials TO 'x.csv'", "--warehouse", str(loaded)]) == 1
        assert "refused" in capsys.readouterr().err
    finally:
        other.close()


# --- the crawler stays on the source's hosts -----------------------------------------------------

def _open(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return open_warehouse(tmp_path / "w.duckdb")


def test_no_request_ever_leaves_the_sources_host(tmp_path):
    """Redirects, sitemap entries, a foreign child sitemap and links in pages point at another
    port and at the mirror itself under another name; neither ever sees a request."""
    with MirrorServer(Mirror("veeva", generate_pages("veeva", 1))) as foreign:
        fport = foreign.port
        pages = generate_pages("veeva", 6)
        paths = list(pages)
        # "{mport}" is the mirror's own port, filled in once the mirror is listening.
        targets = {
            "/study/to-foreign-port": f"http://127.0.0.1:{fport}{paths[0]}",
            "/study/to-localhost-same-port": f"http://localhost:{{mport}}{paths[1]}",
            "/study/protocol-relative": f"//127.0.0.1:{fport}{paths[2]}",
            "/study/userinfo": f"http://127.0.0.1:{{mport}}@127.0.0.1:{fport}{paths[3]}",
            "/study/backslash": f"http://127.0.0.1:{fport}\\@127.0.0.1:{{mport}}{paths[3]}",
            "/study/trailing-dot": f"http://127.0.0.1.:{fport}{paths[0]}",
            "/study/upper-case": f"HTTP://LOCALHOST:{fport}{paths[0]}",
            "/study/hop-then-out": "/study/to-foreign-port",
        }
        faults = Faults(redirects={})
        mirror = Mirror(
            "veeva", pages, faults=faults,
            extra_sitemap_urls=[f"http://localhost:{fport}/study/listed-foreign",
                                f"http://127.0.0.1:{fport}/study/listed-foreign-ip",
                                "http://localhost:{mport}/study/listed-other-name"],
            extra_index_urls=[f"http://127.0.0.1:{fport}/sitemaps/trials-0.xml.gz",
                              f"http://localhost:{fport}/sitemap_index.xml"],
        )
        with MirrorServer(mirror) as srv:
            port = srv.port
            with mirror.lock:
                for src, target in targets.items():
                    faults.redirects[src] = target.replace("{mport}", str(port))
                mirror.extra_sitemap_urls = [u.replace("{mport}", str(port)) for u in mirror.extra_sitemap_urls]
                links = "".join(f'<a href="{t}">x</a>' for t in (*faults.redirects.values(),
                                                                   f"http://localhost:{port}/study/linked"))
                first = pages[paths[0]]
                mirror.pages[paths[0]] = dataclasses.replace(
                    first, body=first.body.replace(b"</body>", links.encode() + b"</body>"))
            conn = _open(tmp_path)
            try:
                run = crawl_into(conn, "veeva", tmp_path / "raw", config=FAST, base_url=srv.base_url)
                failed = dict(conn.execute(
                    "SELECT url, error FROM fetches WHERE kind = 'page' AND outcome = 'failed'").fetchall())
            finally:
                conn.close()
            seen_hosts = {q.headers.get("host") for q in srv.requests}
        assert foreign.requests == []
    assert seen_hosts == {f"127.0.0.1:{port}"}  # never the mirror under the name `localhost`
    assert run.crawl.fetched == 6 and run.summary.trials_loaded == 6
    base = f"http://127.0.0.1:{port}"
    for src in targets:
        assert "not allowed" in failed[base + src] or "redirect without a usable Location" in failed[base + src], src
    assert "/study/linked" not in {q.path for q in srv.requests}  # links in pages are never followed


def test_base_url_defines_the_only_allowed_host(tmp_path):
    with MirrorServer(Mirror("clinconnect", generate_pages("clinconnect", 2))) as srv:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"http://localhost:{srv.port}/trials/NCT05000000\n"
                        f"http://127.0.0.1:{srv.port + 1 if srv.port < 65535 else 1}/trials/NCT05000001\n"
                        f"{srv.base_url}/trials/NCT05000001\n")
        conn = _open(tmp_path)
        try:
            run = crawl_into(conn, "clinconnect", tmp_path / "raw", config=FAST, base_url=srv.base_url,
                             urls_file=urls)
        finally:
            conn.close()
        hosts = {q.headers.get("host") for q in srv.requests}
    assert hosts == {f"127.0.0.1:{srv.port}"}
    assert run.crawl.discovered == 1 and run.crawl.fetched == 1


# --- file names derived from URLs cannot escape raw/ ------------------------------------------------

TRAVERSAL_PATHS = (
    "/study/..%2f..%2f..%2fescaped",
    "/study/%2e%2e%2f%2e%2e%2fescaped-encoded",
    "/study/%2E%2E%2F%2E%2E%2Fescaped-upper",
    "/study/..%5c..%5cescaped-backslash",
    "/study/%2fetc%2fpasswd",
    "/study/escaped%00.html",
    "/study/..",
)


def test_urls_never_become_paths_outside_raw(tmp_path):
    pages = generate_pages("veeva", len(TRAVERSAL_PATHS))
    bodies = list(pages.values())
    served = {path: page for path, page in zip(TRAVERSAL_PATHS, bodies)}
    work = tmp_path / "work"
    work.mkdir()
    with MirrorServer(Mirror("veeva", served)) as srv:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{srv.base_url}{p}\n" for p in TRAVERSAL_PATHS)
                        + f"{srv.base_url}/study/../../../etc/passwd\n"
                        + "file:///etc/passwd\n/etc/passwd\n"
                        + f"{srv.base_url}/study/nul\x00byte\n")
        conn = open_warehouse(work / "w.duckdb")
        try:
            run = crawl_into(conn, "veeva", work / "raw", config=FAST, base_url=srv.base_url, urls_file=urls)
            stored_urls = {u for (u,) in conn.execute("SELECT url FROM pages").fetchall()}
        finally:
            conn.close()
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    objects = [p for p in written if p.startswith("work/raw/")]
    assert set(written) - set(objects) == {"urls.txt", "work/w.duckdb"} | (
        {"work/w.duckdb.wal"} if "work/w.duckdb.wal" in written else set())
    for rel in objects:  # raw/<source>/objects/<2 hex>/<sha256>.html.gz, named by content only
        parts = rel.split("/")
        assert parts[2:4] == ["veeva", "objects"] and len(parts) == 6, rel
        assert parts[5] == parts[4] + parts[5][2:] and parts[5].endswith(".html.gz"), rel
        assert len(parts[5]) == 64 + len(".html.gz")
    assert run.crawl.fetched == len(objects) >= len(TRAVERSAL_PATHS) - 2
    assert {f"{srv.base_url}/study/..%2f..%2f..%2fescaped"} <= stored_urls  # the URL is kept as text


@pytest.mark.parametrize("source", ["../x", "/abs", "a/../../b", "x\x00y", "%2e%2e"])
def test_raw_store_refuses_names_that_are_not_plain(tmp_path, source):
    store = RawStore(tmp_path / "raw")
    with pytest.raises(ValueError):
        store.put(source, b"x")
    with pytest.raises(ValueError):
        store.get("veeva", "../" * 3 + "etc/passwd")
    assert not any(tmp_path.rglob("*")) or all(p.is_dir() for p in tmp_path.rglob("*"))


# --- size caps through the crawler, against a real server -------------------------------------------

def test_gzip_bomb_and_50mb_page_are_cut_off(tmp_path):
    """A 50 MB page sent gzip-compressed (~50 KB on the wire: a gzip bomb) and sent plain,
    with and without Content-Length: all stop at the 5 MB cap, nothing is stored."""
    pages = generate_pages("veeva", 3)
    paths = list(pages)
    big = pages[paths[0]].body.replace(b"</body>", b"<p>" + b"\0" * (50 * 2**20) + b"</p></body>")
    bomb_mirror = Mirror("veeva", {**pages, "/study/gzip-bomb": dataclasses.replace(pages[paths[0]], body=big)},
                         gzip_pages=True)
    plain_mirror = Mirror("veeva", {**pages, "/study/fifty-mb": dataclasses.replace(pages[paths[0]], body=big)},
                          gzip_pages=False, faults=Faults(oversized={"/study/fifty-mb-chunked": 50 * 2**20}))
    results = {}
    for name, mirror in (("bomb", bomb_mirror), ("plain", plain_mirror)):
        with MirrorServer(mirror) as srv:
            conn = open_warehouse(tmp_path / f"{name}.duckdb")
            try:
                run = crawl_into(conn, "veeva", tmp_path / f"raw-{name}", config=FAST, base_url=srv.base_url)
                results[name] = (run, dict(conn.execute(
                    "SELECT url, error FROM fetches WHERE kind = 'page' AND outcome = 'failed'").fetchall()),
                    srv.base_url, {q.path: q for q in srv.requests})
            finally:
                conn.close()
    run, failed, base, _ = results["bomb"]
    assert run.crawl.fetched == 3 and run.summary.trials_loaded == 3  # the good pages still load
    assert "response too large: more than 5000000 bytes decoded" in failed[base + "/study/gzip-bomb"]
    run, failed, base, requests = results["plain"]
    assert run.crawl.fetched == 3
    assert "Content-Length" in failed[base + "/study/fifty-mb"]  # refused from the header, unread
    assert "more than 5000000 bytes" in failed[base + "/study/fifty-mb-chunked"]
    big_sha = hashlib.sha256(big).hexdigest()
    for name in ("bomb", "plain"):
        shas = set(RawStore(tmp_path / f"raw-{name}").iter_shas("veeva"))
        assert big_sha not in shas and len(shas) == 3
    assert len(gzip.compress(big)) < 1_000_000  # it really was a bomb: small on the wire


# --- nothing secret is needed; anything that could be one comes from the environment ------------

def test_user_agent_comes_from_the_environment_and_is_not_required(tmp_path, monkeypatch):
    """The crawl asset sends $TRIALS_USER_AGENT (read through dg.EnvVar) and runs without it."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from pipeline.defs.crawl import mirror_pages
    from pipeline.defs.resources import USER_AGENT_ENV, crawl_user_agent
    from pipeline.scrape import DEFAULT_USER_AGENT

    monkeypatch.delenv(USER_AGENT_ENV, raising=False)
    assert crawl_user_agent() == DEFAULT_USER_AGENT
    contact = "trial-warehouse-bot/0.1 (mailto:ops@example.invalid)"
    seen = []
    for env in (None, contact):
        if env:
            monkeypatch.setenv(USER_AGENT_ENV, env)
        with MirrorServer(Mirror("clinconnect", generate_pages("clinconnect", 1))) as srv:
            result = dg.materialize(
                [mirror_pages], partition_key="clinconnect",
                resources={"warehouse": DuckDBResource(database=str(tmp_path / f"{bool(env)}.duckdb"))},
                run_config={"ops": {"mirror_pages": {"config": {
                    "base_url": srv.base_url, "rate": 500.0, "raw_dir": str(tmp_path / "raw")}}}},
            )
            assert result.success
            seen.append({q.headers.get("user-agent") for q in srv.requests})
    assert seen == [{DEFAULT_USER_AGENT}, {contact}]
    source = (REPO / "pipeline" / "defs" / "resources.py").read_text()
    assert "dg.EnvVar(USER_AGENT_ENV)" in source and "dg.EnvVar(WAREHOUSE_ENV)" in source


def test_crawl_cli_reads_the_user_agent_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRIALS_USER_AGENT", "bot/9 (mailto:x@example.invalid)")
    with MirrorServer(Mirror("clinconnect", generate_pages("clinconnect", 1))) as srv:
        assert main(["crawl", "clinconnect", "--base-url", srv.base_url, "--warehouse", str(tmp_path / "w.duckdb"),
                     "--raw-dir", str(tmp_path / "raw"), "--rate", "500", "--quiet"]) == 0
        assert {q.headers.get("user-agent") for q in srv.requests} == {"bot/9 (mailto:x@example.invalid)"}
    capsys.readouterr()


def test_the_sandbox_holds_even_without_the_statement_check(loaded, tmp_path):
    """Defence in depth: the statement allow-list is only the first, readable refusal; the
    connection itself refuses files, settings and writes."""
    from pipeline.db.query import QueryError, execute

    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    conn = open_warehouse(loaded, read_only=True, sandboxed=True)
    try:
        for sql, word in [
            (f"ATTACH '{tmp_path / 'x.duckdb'}' AS x", "disabled by configuration"),
            (f"COPY trials TO '{tmp_path / 'out.csv'}'", "disabled by configuration"),
            (f"SELECT * FROM read_csv('{secret}')", "disabled by configuration"),
            (f"SELECT * FROM read_text('{secret}')", "disabled by configuration"),
            ("INSTALL httpfs", "disabled by configuration"),
            ("LOAD httpfs", "disabled through configuration"),
            ("SET enable_external_access = true", "configuration has been locked"),
            ("INSERT INTO keywords (trial_id, position, keyword) VALUES ('x', 1, 'y')", "read-only"),
            ("CREATE TABLE evil (a INT)", "read-only"),
        ]:
            with pytest.raises(QueryError, match="refused") as info:
                execute(conn, sql, loaded)
            assert word in str(info.value), (sql, str(info.value))
    finally:
        conn.close()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.duckdb").exists()
