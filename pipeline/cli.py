"""The `trials` command: ingest pages, run the Dagster assets, query and export the warehouse.

Only argument parsing and error reporting live here; the work is done by
`pipeline.run`, `pipeline.reparse`, `pipeline.export`, `pipeline.db.query` and (for
`trials run`) `pipeline.defs.materialize`.
Mistakes a user can fix (missing path, bad SQL, missing or locked warehouse) print one
line on stderr and exit 1; usage errors exit 2 as argparse does.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import duckdb

from pipeline import __version__
from pipeline.db.connection import (
    DEFAULT_WAREHOUSE,
    WAREHOUSE_ENV,
    WarehouseError,
    describe_duckdb_error,
    open_warehouse,
    resolve_warehouse,
)
from pipeline.db.load import LoadRefused
from pipeline.db.migrate import MigrationError, applied_versions
from pipeline.db.profiles import refresh_profiles
from pipeline.db.query import FORMATS, QueryError, format_result, run_query
from pipeline.eligibility import FLAGS
from pipeline.export import FORMATS as EXPORT_FORMATS
from pipeline.export import ExportError, export_warehouse, format_export
from pipeline.faults import WAREHOUSE, describe_os_error
from pipeline.match import MEASURE_OPTIONS, Patient, format_match, notes, parse_measure, run_match
from pipeline.rawstore import RawStoreError
from pipeline.dedup import DedupConfig
from pipeline.reparse import format_reparse, reparse
from pipeline.review import ReviewError, decide, format_decision, list_candidates
from pipeline.run import InputError, crawl_and_ingest, format_crawl, format_summary, ingest
from pipeline.progress import Bars
from pipeline.scrape import SITES, CrawlConfig, RobotsUnreachable
from pipeline.status import DEFAULT_LIMIT, format_status, status

PROG = "trials"
USER_AGENT_ENV = "TRIALS_USER_AGENT"  # may carry a contact e-mail: never hard-coded


class UserError(Exception):
    """Anything to report as one line on stderr with exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Clinical-trial pages into a DuckDB warehouse, and SQL over it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    warehouse_help = (
        f"warehouse file (default: ${WAREHOUSE_ENV} if set, else {DEFAULT_WAREHOUSE} "
        "relative to the current directory)"
    )
    wait_help = (
        "if another process is writing the warehouse, wait up to SECONDS for it to finish "
        "(default 0: fail at once with a message)"
    )

    def add_wait(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS", help=wait_help)

    def add_thresholds(cmd: argparse.ArgumentParser) -> None:
        default = DedupConfig()
        cmd.add_argument("--accept-threshold", type=float, metavar="W",
                         help="merge page pairs whose match weight (log2 odds) is at least W "
                              f"(default {default.accept_threshold:g})")
        cmd.add_argument("--reject-threshold", type=float, metavar="W",
                         help="drop pairs scoring below W; pairs between the two thresholds "
                              f"wait in `trials review` (default {default.reject_threshold:g})")

    ingest_cmd = commands.add_parser(
        "ingest", help="read, parse, link and load saved pages",
        description="Read saved pages (files or folders), parse them, link them to trials and "
                    "load the warehouse. Pages already loaded are skipped.",
    )
    ingest_cmd.add_argument("paths", nargs="+", metavar="PATH", help="page file or folder")
    ingest_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    ingest_cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    add_thresholds(ingest_cmd)
    add_wait(ingest_cmd)

    run_cmd = commands.add_parser(
        "run", help="materialize every Dagster asset (the bundled sample by default)",
        description="Materialize every Dagster asset in-process with the default config "
                    "(pages under raw/sample) and print the run summary.",
    )
    run_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_thresholds(run_cmd)
    add_wait(run_cmd)

    crawl_cmd = commands.add_parser(
        "crawl", help="crawl a mirror site politely and load what changed",
        description="Discover trial pages of a mirror (robots.txt, sitemaps), fetch the new and "
                    "changed ones politely, keep every raw version under --raw-dir, then parse "
                    "and load them. An interrupted crawl resumes where it stopped.",
    )
    crawl_cmd.add_argument("source", choices=sorted(SITES), help="which mirror")
    crawl_cmd.add_argument("--base-url", metavar="URL", help="site root (default: the public site)")
    crawl_cmd.add_argument("--limit", type=int, metavar="N", help="request at most N pages")
    crawl_cmd.add_argument("--since", type=_date, metavar="DATE",
                           help="only pages whose sitemap lastmod is on or after DATE (YYYY-MM-DD)")
    crawl_cmd.add_argument("--urls", metavar="FILE", help="crawl the URLs listed in FILE instead of sitemaps")
    crawl_cmd.add_argument("--raw-dir", metavar="DIR", default="raw",
                           help="raw page store, a folder or fsspec URL (default: raw)")
    crawl_cmd.add_argument("--rate", type=float, metavar="R", help="requests per second per host (default 1)")
    crawl_cmd.add_argument("--concurrency", type=int, metavar="N", help="requests in flight per host (default 2)")
    crawl_cmd.add_argument("--user-agent", metavar="UA",
                           help=f"User-Agent header (default: ${USER_AGENT_ENV} if set, else the project's)")
    crawl_cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    crawl_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_thresholds(crawl_cmd)
    add_wait(crawl_cmd)

    review_cmd = commands.add_parser(
        "review", help="list likely duplicate pages, accept or reject a pair",
        description="Without ACTION (or with `list`): the page pairs that scored between the "
                    "reject and accept thresholds, best first. `accept PAGE PAGE` makes the two "
                    "pages one trial, `reject PAGE PAGE` keeps them apart for good; the decision "
                    "is stored, applied at once and re-applied by every later run. PAGE is a "
                    "page id or a unique prefix of at least 6 characters.",
    )
    review_cmd.add_argument("action", nargs="?", choices=("list", "accept", "reject"), default="list",
                            help="list (default), accept or reject")
    review_cmd.add_argument("pages", nargs="*", metavar="PAGE", help="two page ids (accept/reject)")
    review_cmd.add_argument("--note", metavar="TEXT", help="why (kept with the decision)")
    review_cmd.add_argument("--format", choices=FORMATS, default="table",
                            help="output format of the list (default: table)")
    review_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_thresholds(review_cmd)
    add_wait(review_cmd)

    reparse_cmd = commands.add_parser(
        "reparse", help="re-parse pages read by an older parser version (no fetching)",
        description="Re-parse every page the warehouse holds from another parser version, "
                    "reading its bytes from the raw store (crawled pages) or its file (ingested "
                    "pages), and reload the trials they shape. Nothing is fetched.",
    )
    reparse_cmd.add_argument("--raw-dir", metavar="DIR", default="raw",
                             help="raw page store of the crawled pages (default: raw)")
    reparse_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    reparse_cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    reparse_cmd.add_argument("--workers", type=int, default=1, metavar="N",
                             help="parse on N processes (the load stays one writer); default 1")
    add_wait(reparse_cmd)

    status_cmd = commands.add_parser(
        "status", help="the last runs, and which pages they rejected and why (read-only)",
        description="Show the last runs recorded in the warehouse (command, outcome, pages "
                    "found/fetched/unchanged/parsed/rejected, trials added/changed/removed, time "
                    "per stage) and the pages they rejected or parsed partially, with the reason.",
    )
    status_cmd.add_argument("--limit", type=_positive, default=DEFAULT_LIMIT, metavar="N",
                            help=f"how many runs (default {DEFAULT_LIMIT})")
    status_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_wait(status_cmd)

    report_cmd = commands.add_parser(
        "report", help="write a static HTML report with charts of the warehouse (read-only)",
        description="Write one self-contained HTML file (the charting JavaScript embedded, no "
                    "network needed to view it): trials by status, phase, target antigen and "
                    "sponsor, trial starts per year, and the changes of the recent runs.",
    )
    report_cmd.add_argument("--out", metavar="FILE", default=None,
                            help="output file (default: report.html beside the warehouse)")
    report_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_wait(report_cmd)

    sql_cmd = commands.add_parser(
        "sql", help="run SQL on the warehouse (read-only)",
        description="Run one SQL query on a read-only connection to the warehouse.",
    )
    sql_cmd.add_argument("query", metavar="SQL", help='e.g. "SELECT count(*) FROM trials"')
    sql_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    sql_cmd.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    add_wait(sql_cmd)

    export_cmd = commands.add_parser(
        "export", help="write every table and view as Parquet or CSV files",
        description="Write every warehouse table and analyst view to DIR, one file each "
                    "(<name>.parquet or <name>.csv). Parquet keeps lists, dates and timestamps "
                    "typed. Reads a read-only connection.",
    )
    export_cmd.add_argument("directory", metavar="DIR", help="output folder (created if missing)")
    export_cmd.add_argument("--format", choices=EXPORT_FORMATS, default="parquet",
                            help="file format (default: parquet)")
    export_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_wait(export_cmd)

    migrate_cmd = commands.add_parser(
        "migrate", help="upgrade the warehouse schema in place",
        description="Apply pending schema migrations to the warehouse (creating it if missing) "
                    "and print its schema version. Loading commands do this too.",
    )
    migrate_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_wait(migrate_cmd)

    match_cmd = commands.add_parser(
        "match", help="recruiting trials a patient could join, and why not the others",
        description="List the recruiting trials whose eligibility constraints admit the patient "
                    "described by the options, and with --include-excluded the others too, each "
                    "with the constraints that exclude the patient. Constraints the options say "
                    "nothing about never exclude (they are counted as not_checked). Read-only; "
                    "see docs/matching.md for the rules and the same question in SQL.",
    )
    match_cmd.add_argument("--age", type=float, metavar="YEARS", help="age in years")
    match_cmd.add_argument("--ecog", type=float, metavar="N", help="ECOG performance status")
    for opt in MEASURE_OPTIONS:
        match_cmd.add_argument(opt.option, type=float, metavar="N", dest=f"measure_{opt.variable}_{opt.unit}",
                               help=opt.help)
    match_cmd.add_argument("--value", type=_measure, action="append", default=[], metavar="VAR[:UNIT]=N",
                           help="any other constrained value, in the constraint unit, e.g. "
                                "platelets=80, alt:U/L=40, washout_chemotherapy=10 (days since); repeatable")
    match_cmd.add_argument("--condition", metavar="NAME", help="condition studied, e.g. AML (synonyms are matched)")
    match_cmd.add_argument("--antigen", action="append", metavar="NAME",
                           help="antigen the tumour expresses, e.g. CD123 (repeatable); when given, "
                                "antigens not listed count as not expressed")
    match_cmd.add_argument("--has", action="append", choices=FLAGS, metavar="FLAG",
                           help=f"the patient has FLAG (repeatable): {', '.join(FLAGS)}")
    match_cmd.add_argument("--include-excluded", action="store_true", help="also list the trials that exclude the patient")
    match_cmd.add_argument("--all-statuses", action="store_true", help="any overall status, not only recruiting")
    match_cmd.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    match_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    add_wait(match_cmd)
    return parser


def _measure(text: str) -> tuple[str, float]:
    try:
        return parse_measure(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _dedup_config(args: argparse.Namespace) -> DedupConfig:
    changes = {k: v for k, v in {
        "accept_threshold": args.accept_threshold, "reject_threshold": args.reject_threshold,
    }.items() if v is not None}
    try:
        return DedupConfig().with_changes(**changes)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _cmd_ingest(args: argparse.Namespace, out: TextIO) -> int:
    with Bars.for_terminal(args.quiet) as bars:
        summary = ingest(args.paths, resolve_warehouse(args.warehouse), wait=args.wait, bars=bars,
                         dedup=_dedup_config(args))
    print(format_summary(summary), file=out)
    return 0


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    warehouse = resolve_warehouse(args.warehouse)
    dedup = _dedup_config(args)
    # Fail fast on a locked or broken warehouse: the Dagster resource would keep retrying.
    open_warehouse(warehouse, wait=args.wait).close()
    from pipeline.defs.materialize import RunFailed, materialize_all  # Dagster loads slowly

    try:
        outcome = materialize_all(warehouse, link_config={
            "accept_threshold": dedup.accept_threshold, "reject_threshold": dedup.reject_threshold,
        })
    except RunFailed as exc:
        raise UserError(f"run failed: {exc}") from exc
    print(format_summary(outcome.summary), file=out)
    print("Checks: " + ", ".join(
        f"{name} {'ok' if passed else 'FAILED'}" for name, passed, _ in outcome.checks
    ), file=out)
    if outcome.failed_checks:
        raise UserError("warehouse checks failed: " + "; ".join(outcome.failed_checks))
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _cmd_crawl(args: argparse.Namespace, out: TextIO) -> int:
    overrides = {k: v for k, v in {
        "rate": args.rate, "concurrency": args.concurrency,
        "user_agent": args.user_agent or os.environ.get(USER_AGENT_ENV) or None,
    }.items() if v is not None}
    if args.urls and not os.path.exists(args.urls):
        raise UserError(f"no such file: {args.urls}")
    try:
        with Bars.for_terminal(args.quiet) as bars:
            outcome = crawl_and_ingest(
                args.source, resolve_warehouse(args.warehouse), args.raw_dir, wait=args.wait,
                config=dataclasses.replace(CrawlConfig(), **overrides), base_url=args.base_url,
                limit=args.limit, since=args.since, urls_file=args.urls,
                progress=bars.crawl_callback(), bars=bars, dedup=_dedup_config(args),
            )
    except RobotsUnreachable as exc:
        raise UserError(f"crawl not started: {exc}") from exc
    print(format_crawl(outcome.crawl), file=out)
    print(format_summary(outcome.summary), file=out)
    return 0


def _cmd_sql(args: argparse.Namespace, out: TextIO) -> int:
    result = run_query(resolve_warehouse(args.warehouse), args.query, wait=args.wait)
    print(format_result(result, args.format), file=out)
    return 0


def _cmd_reparse(args: argparse.Namespace, out: TextIO) -> int:
    with Bars.for_terminal(args.quiet) as bars:
        result = reparse(resolve_warehouse(args.warehouse), args.raw_dir, wait=args.wait, bars=bars,
                         workers=args.workers)
    print(format_reparse(result), file=out)
    return 0


def _cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    print(format_status(status(resolve_warehouse(args.warehouse), args.limit, wait=args.wait)), file=out)
    return 0


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from pipeline.report import ReportError, default_report_path, write_report  # plotly loads slowly

    warehouse = resolve_warehouse(args.warehouse)
    target = args.out or default_report_path(warehouse)
    try:
        result = write_report(warehouse, target, wait=args.wait)
    except ReportError as exc:
        raise UserError(str(exc)) from exc
    print(f"Report: {result.path} ({len(result.charts)} charts, {result.trials} trials, "
          f"{result.bytes // 1024} KiB, self-contained)", file=out)
    return 0


def _cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    result = export_warehouse(
        resolve_warehouse(args.warehouse), args.directory, args.format, wait=args.wait
    )
    print(format_export(result), file=out)
    return 0


def _cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    warehouse = resolve_warehouse(args.warehouse)
    conn = open_warehouse(warehouse, wait=args.wait)
    try:
        version = max(applied_versions(conn), default=0)
        # an upgraded warehouse gets the derived tables of the new schema (no-op when current)
        refreshed = refresh_profiles(conn)
    finally:
        conn.close()
    print(f"Warehouse {warehouse} is at schema version {version}", file=out)
    if refreshed.trials_profiled or refreshed.trials_dropped:
        print(f"Eligibility and therapy profiles refreshed for {refreshed.trials_profiled} trial(s)", file=out)
    return 0


def _cmd_match(args: argparse.Namespace, out: TextIO) -> int:
    measures = {
        f"{o.variable}|{o.unit}" if o.unit else o.variable: v * o.scale
        for o in MEASURE_OPTIONS
        if (v := getattr(args, f"measure_{o.variable}_{o.unit}")) is not None
    }
    measures.update(args.value)
    antigens = None if args.antigen is None else tuple(
        a.strip() for item in args.antigen for a in item.split(",") if a.strip())
    patient = Patient(age=args.age, ecog=args.ecog, measures=measures, condition=args.condition,
                      antigens=antigens, flags=None if args.has is None else tuple(args.has))
    result = run_match(resolve_warehouse(args.warehouse), patient, include_excluded=args.include_excluded,
                       all_statuses=args.all_statuses, wait=args.wait)
    for note in notes(result):
        print(note, file=sys.stderr)
    print(format_match(result, args.format), file=out)
    return 0


def _cmd_review(args: argparse.Namespace, out: TextIO) -> int:
    warehouse = resolve_warehouse(args.warehouse)
    if args.action == "list":
        if args.pages:
            raise UserError("review list takes no page ids")
        result = list_candidates(warehouse, wait=args.wait)
        print(format_result(result, args.format), file=out)
        return 0
    if len(args.pages) != 2:
        raise UserError(f"review {args.action} needs two page ids, got {len(args.pages)}")
    decision = decide(warehouse, args.pages[0], args.pages[1], args.action, note=args.note,
                      config=_dedup_config(args), wait=args.wait)
    print(format_decision(decision), file=out)
    return 0


_COMMANDS = {
    "ingest": _cmd_ingest, "run": _cmd_run, "crawl": _cmd_crawl, "reparse": _cmd_reparse,
    "sql": _cmd_sql, "export": _cmd_export, "migrate": _cmd_migrate, "match": _cmd_match,
    "status": _cmd_status, "report": _cmd_report, "review": _cmd_review,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except (UserError, InputError, WarehouseError, MigrationError, QueryError, ExportError,
            LoadRefused, ReviewError) as exc:
        message = str(exc)
    except duckdb.Error as exc:
        message = describe_duckdb_error(resolve_warehouse(args.warehouse), exc)
    except BrokenPipeError:  # `trials sql ... | head`: the reader is gone, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RawStoreError as exc:  # disk full / unwritable raw store: the crawl stopped
        message = f"{exc}; the next run resumes"
    except OSError as exc:  # disk full or permission denied while writing
        warehouse = resolve_warehouse(args.warehouse)
        message = describe_os_error(exc, f"the warehouse {warehouse}" if exc.filename == WAREHOUSE else None)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
