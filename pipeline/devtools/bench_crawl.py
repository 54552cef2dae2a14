"""`make bench-crawl`: crawl speed against the local mirror with politeness off.

The mirror runs in its own process so the CPU time measured here is the crawler's
alone: pages/second (wall clock) and CPU milliseconds per page spent outside
network waits, for the fetch stage and for fetch + parse + load.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.db.connection import open_warehouse
from pipeline.rawstore import RawStore
from pipeline.run import ingest_batch, pending_crawled_pages
from pipeline.scrape import CrawlConfig, crawl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("mirror did not start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.devtools.bench_crawl")
    p.add_argument("--style", choices=("veeva", "clinconnect"), default="clinconnect")
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)

    port = _free_port()
    mirror = subprocess.Popen(
        [sys.executable, "-m", "pipeline.devtools.mirror", "--style", args.style, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        with tempfile.TemporaryDirectory() as tmp:
            conn = open_warehouse(Path(tmp) / "bench.duckdb")
            store = RawStore(Path(tmp) / "raw")
            # The mirror's robots.txt sets no Crawl-delay, so this is politeness off.
            config = dataclasses.replace(CrawlConfig(), rate=100_000.0, concurrency=args.concurrency)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = crawl(args.style, raw_root=store, conn=conn, config=config,
                           base_url=f"http://127.0.0.1:{port}")
            cpu1, wall1 = time.process_time(), time.perf_counter()
            summary = ingest_batch(pending_crawled_pages(conn, store, args.style), conn, "bench")
            cpu2, wall2 = time.process_time(), time.perf_counter()
            conn.close()
    finally:
        mirror.terminate()
        mirror.wait()

    n = max(result.fetched, 1)
    print(f"cores: {os.cpu_count()}  style: {args.style}  pages: {result.fetched} "
          f"(failed {result.failed})  concurrency: {args.concurrency}, no rate limit")
    print(f"{'stage':<28}{'pages/s':>10}{'CPU ms/page':>14}")
    print(f"{'fetch + raw store':<28}{n / (wall1 - wall0):>10.1f}{1000 * (cpu1 - cpu0) / n:>14.2f}")
    print(f"{'parse + link + load':<28}{n / (wall2 - wall1):>10.1f}{1000 * (cpu2 - cpu1) / n:>14.2f}")
    print(f"{'whole crawl run':<28}{n / (wall2 - wall0):>10.1f}{1000 * (cpu2 - cpu0) / n:>14.2f}")
    print(f"trials loaded: {summary.trials_loaded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
