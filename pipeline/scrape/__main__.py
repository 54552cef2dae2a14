"""Developer entry point: `python -m pipeline.scrape veeva --db W.duckdb --raw-root raw ...`.

The product CLI (`trials crawl`) lives in pipeline/cli.py; this exists so the crawler
can be run (and killed) on its own, e.g. against `python -m pipeline.devtools.mirror`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys

import duckdb

from pipeline.scrape import CrawlConfig, TerminalProgress, crawl, ensure_fetch_schema
from pipeline.scrape.sites import SITES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.scrape")
    p.add_argument("source", choices=sorted(SITES))
    p.add_argument("--db", required=True, help="DuckDB file (crawls/fetches tables created if missing)")
    p.add_argument("--raw-root", required=True)
    p.add_argument("--base-url")
    p.add_argument("--limit", type=int)
    p.add_argument("--since", type=dt.date.fromisoformat)
    p.add_argument("--urls", dest="urls_file")
    p.add_argument("--rate", type=float)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--user-agent")
    p.add_argument("--backoff-base", type=float)
    p.add_argument("--batch-rows", type=int)
    p.add_argument("--no-lastmod", action="store_true")
    args = p.parse_args(argv)

    overrides = {
        k: v
        for k, v in {
            "rate": args.rate,
            "concurrency": args.concurrency,
            "user_agent": args.user_agent,
            "backoff_base_s": args.backoff_base,
            "batch_rows": args.batch_rows,
        }.items()
        if v is not None
    }
    if args.no_lastmod:
        overrides["use_lastmod"] = False
    config = dataclasses.replace(CrawlConfig(), **overrides)
    conn = duckdb.connect(args.db)
    try:
        ensure_fetch_schema(conn)
        result = crawl(
            args.source,
            raw_root=args.raw_root,
            conn=conn,
            config=config,
            base_url=args.base_url,
            limit=args.limit,
            since=args.since,
            urls_file=args.urls_file,
            progress=TerminalProgress(),
        )
    finally:
        conn.close()
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("pages", "failures")}
    summary["pages"] = len(result.pages)
    summary["failures"] = [list(f) for f in result.failures[:20]]
    json.dump(summary, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0 if result.status == "finished" else 3


if __name__ == "__main__":
    sys.exit(main())
