"""The `trials` command: ingest pages, run the Dagster assets, query the warehouse.

Only argument parsing and error reporting live here; the work is done by
`pipeline.run`, `pipeline.db.query` and (for `trials run`) `pipeline.defs.materialize`.
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
from pipeline.db.migrate import MigrationError
from pipeline.db.query import FORMATS, QueryError, format_result, run_query
from pipeline.run import InputError, crawl_and_ingest, format_crawl, format_summary, ingest
from pipeline.scrape import SITES, CrawlConfig, RobotsUnreachable, TerminalProgress

PROG = "trials"


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

    ingest_cmd = commands.add_parser(
        "ingest", help="read, parse, link and load saved pages",
        description="Read saved pages (files or folders), parse them, link them to trials and "
                    "load the warehouse. Pages already loaded are skipped.",
    )
    ingest_cmd.add_argument("paths", nargs="+", metavar="PATH", help="page file or folder")
    ingest_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)

    run_cmd = commands.add_parser(
        "run", help="materialize every Dagster asset (the bundled sample by default)",
        description="Materialize every Dagster asset in-process with the default config "
                    "(pages under raw/sample) and print the run summary.",
    )
    run_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)

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
    crawl_cmd.add_argument("--user-agent", metavar="UA", help="User-Agent header")
    crawl_cmd.add_argument("--quiet", action="store_true", help="no progress line")
    crawl_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)

    sql_cmd = commands.add_parser(
        "sql", help="run SQL on the warehouse (read-only)",
        description="Run one SQL query on a read-only connection to the warehouse.",
    )
    sql_cmd.add_argument("query", metavar="SQL", help='e.g. "SELECT count(*) FROM trials"')
    sql_cmd.add_argument("--warehouse", metavar="FILE", help=warehouse_help)
    sql_cmd.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    return parser


def _cmd_ingest(args: argparse.Namespace, out: TextIO) -> int:
    summary = ingest(args.paths, resolve_warehouse(args.warehouse))
    print(format_summary(summary), file=out)
    return 0


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    warehouse = resolve_warehouse(args.warehouse)
    # Fail fast on a locked or broken warehouse: the Dagster resource would keep retrying.
    open_warehouse(warehouse).close()
    from pipeline.defs.materialize import RunFailed, materialize_all  # Dagster loads slowly

    try:
        outcome = materialize_all(warehouse)
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
        "rate": args.rate, "concurrency": args.concurrency, "user_agent": args.user_agent,
    }.items() if v is not None}
    if args.urls and not os.path.exists(args.urls):
        raise UserError(f"no such file: {args.urls}")
    progress = None if args.quiet else TerminalProgress()
    try:
        outcome = crawl_and_ingest(
            args.source, resolve_warehouse(args.warehouse), args.raw_dir,
            config=dataclasses.replace(CrawlConfig(), **overrides), base_url=args.base_url,
            limit=args.limit, since=args.since, urls_file=args.urls, progress=progress,
        )
    except RobotsUnreachable as exc:
        raise UserError(f"crawl not started: {exc}") from exc
    print(format_crawl(outcome.crawl), file=out)
    print(format_summary(outcome.summary), file=out)
    return 0


def _cmd_sql(args: argparse.Namespace, out: TextIO) -> int:
    result = run_query(resolve_warehouse(args.warehouse), args.query)
    print(format_result(result, args.format), file=out)
    return 0


_COMMANDS = {"ingest": _cmd_ingest, "run": _cmd_run, "crawl": _cmd_crawl, "sql": _cmd_sql}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except (UserError, InputError, WarehouseError, MigrationError, QueryError) as exc:
        message = str(exc)
    except duckdb.Error as exc:
        message = describe_duckdb_error(resolve_warehouse(args.warehouse), exc)
    except BrokenPipeError:  # `trials sql ... | head`: the reader is gone, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
