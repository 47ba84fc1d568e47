"""Run every benchmark in turn and write their figures to one short markdown report.

    .venv/bin/python bench/report.py [--out bench/report.md] [--only suggest,images]

Each benchmark is its own script that prints its figures; this runs them one after
another (never at once: they would measure each other) with their default settings,
and keeps what each printed, how long it took, and whether it finished. Nothing here
judges the figures: the issues name the targets, the report lets a reader compare.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# In the order a reader meets the features; load last, as it runs the whole shop.
BENCHMARKS = ("catalog", "search", "suggest", "ai", "assistant", "images", "load")
# A benchmark that hangs must not hold the report hostage.
TIMEOUT_SECONDS = 30 * 60


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    returncode: int | None  # None: killed at the timeout
    output: str


def run_benchmark(name: str) -> Run:
    script = BENCH_DIR / f"{name}.py"
    start = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        code: int | None = done.returncode
        output = done.stdout + (f"\n{done.stderr}" if done.returncode else "")
    except subprocess.TimeoutExpired as expired:
        code = None
        output = _text(expired.stdout) + f"\n(killed after {TIMEOUT_SECONDS} s)"
    seconds = time.monotonic() - start
    print(f"bench: {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return Run(name, seconds, code, output.strip())


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    done = subprocess.run(
        [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def render(runs: list[Run]) -> str:
    status = {0: "ok", None: "timed out"}
    lines = [
        "# ShopAI benchmark report",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}.",
        "Figures only: each issue names its targets. Benchmarks ran one at a time.",
        "",
        "| benchmark | status | took |",
        "| --- | --- | --- |",
    ]
    for run in runs:
        state = status.get(run.returncode, f"failed ({run.returncode})")
        lines.append(f"| [{run.name}](#{run.name}) | {state} | {run.seconds:.0f} s |")
    for run in runs:
        lines += ["", f"## {run.name}", "", f"`bench/{run.name}.py`", "", "```", run.output, "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "report.md")
    parser.add_argument("--only", help="comma-separated names, e.g. suggest,images")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    runs = [run_benchmark(name) for name in names]
    args.out.write_text(render(runs), encoding="utf-8")
    print(f"report: {args.out}")
    return 0 if all(run.returncode == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
