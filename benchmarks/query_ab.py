"""PromQL query benchmark, two versions of the gateway side by side: a baseline tree and this one.

Starts `metrics-gateway serve` from each tree (a `git worktree` of the baseline commit, and the
checkout this script is in) on fresh embedded stores, loads both with the data of
benchmarks/query.py, then times the same queries alternating between the two on every round,
so both see the same machine load. Prints the medians and new / baseline.

    git worktree add /tmp/baseline <commit>
    .venv/bin/python -m benchmarks.query_ab --baseline /tmp/baseline --runs 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.ingest import free_port, wait_ready
from benchmarks.query import (
    HOUR_MS,
    SCRAPE_MS,
    TIMEOUT,
    bodies,
    query_cases,
    side_by_side,
    stop,
    write_all,
)

HERE = Path(__file__).resolve().parent.parent


def start_gateway(tree: Path, store: Path, port: int) -> subprocess.Popen[bytes]:
    """`python -m gateway` run inside `tree`, so it imports that tree's package."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "gateway", "serve", "--listen", f"127.0.0.1:{port}",
            "--storage", f"chdb://{store}", "--log-level", "warning",
        ],
        cwd=tree,
    )


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="query-ab-"))
    trees = [Path(args.baseline).resolve(), HERE]
    ports = [free_port(), free_port()]
    processes = [
        start_gateway(tree, work / f"store-{side}", port)
        for side, (tree, port) in enumerate(zip(trees, ports, strict=True))
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            await wait_ready(url)
        end_ms = (int(time.time() * 1000) // SCRAPE_MS) * SCRAPE_MS
        start_ms = end_ms - HOUR_MS
        payloads = bodies(args.series, start_ms)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for url in urls:
                await write_all(session, url, payloads)
            await asyncio.sleep(args.settle)
            print(f"load average before timing: {os.getloadavg()[0]:.2f}")
            print("\n| query | baseline | this tree | this / baseline |\n|---|---|---|---|")
            for title, path, params in query_cases(args.series, start_ms, end_ms):
                old, new = await side_by_side(session, urls, path, params, args.runs)
                print(f"| {title} | {old * 1000:.0f} ms | {new * 1000:.0f} ms | {new / old:.2f} |")
        print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    finally:
        stop(processes)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a checkout of the baseline commit")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--settle", type=float, default=30, help="seconds between load and timing")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
