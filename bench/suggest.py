"""Suggestion benchmark: 10,000 products, replayed typing sessions against /api/suggest.

    .venv/bin/python bench/suggest.py [--products 10000] [--rounds 3]

Each session types a query one character at a time (one request per keystroke, as
the widget's debounce would at worst), then pauses (`settled=1`). The model is the
fake OpenAI-compatible server from tests/, so model calls are counted exactly on its
request log. Prints figures only; targets from the issue: p99 under 15 ms; zero model
calls while typing and at most one per distinct settled query (the seed recipe made
one per keystroke).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from catalog import build_database, free_port, percentile, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes

from tests.fakes.openai_server import FakeOpenAI

SESSIONS = [
    "wireless headphones",
    "noise cancelling",
    "mesh wifi",
    "gaming laptop",
    "usb c hub",
    "bluetooth speaker",
    "4k monitor",
    "smart plug",
    "mechanical keyboard",
    "drone camera",
    "portable ssd",
    "fitness tracker",
    "espresso machine",  # the catalog knows little: a settled query worth expanding
    "gift for dad",
    "earphones for running",
    "降噪耳机",
]


def keystrokes(query: str) -> list[str]:
    return [query[:end] for end in range(1, len(query) + 1)]


WIDGET_HEADERS = {"X-Requested-With": "fetch"}  # what the search box's script sends


def get(conn: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    conn.request("GET", path, headers=WIDGET_HEADERS)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path} -> {response.status}")
    return time.perf_counter() - started


def suggest_path(text: str, settled: bool = False) -> str:
    return f"/api/suggest?q={quote(text)}&limit=8" + ("&settled=1" if settled else "")


def chat_calls(fake: FakeOpenAI) -> int:
    return len(fake.requests_to("/chat/completions"))


def wait_until_quiet(fake: FakeOpenAI, seconds: float = 4.0, limit: float = 60.0) -> None:
    """Until the model has had no request for `seconds` (the jobs are done)."""
    deadline = time.monotonic() + limit
    last, quiet_since = chat_calls(fake), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < seconds:
        time.sleep(0.2)
        if (now := chat_calls(fake)) != last:
            last, quiet_since = now, time.monotonic()


def replay(port: int, sessions: list[str], settle: bool) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    for query in sessions:
        latencies += [get(conn, suggest_path(prefix)) for prefix in keystrokes(query)]
        if settle:
            latencies.append(get(conn, suggest_path(query, settled=True)))
    conn.close()
    return latencies


def throughput(port: int, threads: int = 4, seconds: float = 3.0) -> float:
    paths = [suggest_path(p) for q in SESSIONS for p in keystrokes(q)]
    done = [0] * threads
    stop = time.monotonic() + seconds

    def hammer(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        i = slot
        while time.monotonic() < stop:
            get(conn, paths[i % len(paths)])
            done[slot] += 1
            i += threads
        conn.close()

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shopai-bench-") as tmp, FakeOpenAI() as fake:
        instance = Path(tmp)
        build_database(instance, args.products)
        for _ in SESSIONS:  # one well-formed reply per distinct settled query
            fake.reply_json({"queries": ["wireless earbuds", "usb c hub", "bokonon"]})
        os.environ.update(
            OPENAI_BASE_URL=fake.base_url,
            SHOPAI_SUGGEST_RATE_LIMIT="1000000 per minute",
            SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT="1000000 per minute",
        )
        port = free_port()
        server = start_server(instance, port)
        try:
            typed = replay(port, SESSIONS, settle=False)
            while_typing = chat_calls(fake)
            latencies = typed + replay(port, SESSIONS, settle=True)
            wait_until_quiet(fake)
            for _ in range(args.rounds - 1):
                latencies += replay(port, SESSIONS, settle=True)
            wait_until_quiet(fake)
            calls = chat_calls(fake)
            rps = throughput(port)
        finally:
            server.terminate()
            server.wait(timeout=10)

    keys = sum(len(keystrokes(q)) for q in SESSIONS)
    print(f"{len(SESSIONS)} typing sessions, {keys} keystrokes each round, {args.rounds} rounds")
    print(
        f"/api/suggest  p50 {percentile(latencies, 0.5) * 1000:.2f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms   "
        f"mean {statistics.fmean(latencies) * 1000:.2f} ms   {rps:.0f} req/s (4 connections)"
    )
    print(f"model calls while typing: {while_typing}")
    print(
        f"model calls for {len(SESSIONS)} distinct settled queries, asked {args.rounds} times "
        f"each: {calls} ({calls / len(SESSIONS):.2f} per distinct query; "
        f"the seed recipe: {keys * args.rounds} calls, one per keystroke)"
    )


if __name__ == "__main__":
    main()
