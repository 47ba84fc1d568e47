"""Load benchmark: a mixed shopper workload against the shop as production runs it.

    .venv/bin/python bench/load.py [--products 2000] [--users 16] [--seconds 30]

Starts, on loopback, what a production deployment runs: PostgreSQL and Redis (the
test suite's throwaway servers from tests/integration), the fake OpenAI-compatible
server from tests/ as the model, and `shopai serve` (gunicorn web workers and a job
worker). Then N simulated shoppers, each with its own session and connection, pick
tasks at random, as people do: browse (the home page, a category, a product, a
catalog page), type ahead (a query typed one keystroke per request, then settled),
search (the results page) and ask the assistant (an answer streamed over SSE).

Prints requests per second, p50/p99 per endpoint and the error rate (any answer but
200 is an error: the bench lifts the rate limits, so a 429 is a finding too). A
thread per shopper on the same two cores as the servers: the figures are a floor.
Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from assistant import FAKE_DELTAS, QUESTIONS, Shopper
from catalog import build_database, free_port, percentile
from suggest import SESSIONS, WIDGET_HEADERS, suggest_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from tests.fakes.openai_server import FakeOpenAI
from tests.integration.postgres import PostgresServer
from tests.integration.redis_server import RedisServer

SHOPAI = str(Path(sys.executable).with_name("shopai"))
# What a shopper does next, and how often (out of the sum).
TASKS = {"browse": 45, "type-ahead": 30, "search": 15, "chat": 10}
SEARCHES = ["wireless headphones", "4k monitor", "usb c hub", "gaming laptop", "降噪耳机"]
START_LIMIT_SECONDS = 120.0  # reaching it is a failure


@dataclass
class Figures:
    """What every shopper measured, merged under one lock."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[label].append(seconds)
            self.statuses[(label, status)] += 1


class LoadShopper(Shopper):
    """bench/assistant.py's shopper (cookies, CSRF, SSE), plus requests with headers."""

    def get_with(self, path: str, headers: dict[str, str]) -> tuple[int, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers={**headers, **self._cookie_header()})
        response = self.conn.getresponse()
        response.read()
        self._keep_cookies(response)
        return response.status, time.perf_counter() - started


def browse(shopper: LoadShopper, rng: random.Random, figures: Figures, catalog: Catalog) -> None:
    label, path = rng.choice(
        [
            ("GET /", "/"),
            ("GET /category/<slug>", f"/category/{rng.choice(catalog.categories)}"),
            ("GET /product/<slug>", f"/product/{rng.choice(catalog.products)}"),
            ("GET /products/<page>", f"/products/{rng.randint(1, catalog.pages)}"),
        ]
    )
    status, seconds = shopper.get_with(path, {})
    figures.add(label, status, seconds)


def type_ahead(shopper: LoadShopper, rng: random.Random, figures: Figures, _: Catalog) -> None:
    query = rng.choice(SESSIONS)
    for end in range(1, len(query) + 1):
        status, seconds = shopper.get_with(suggest_path(query[:end]), WIDGET_HEADERS)
        figures.add("GET /api/suggest", status, seconds)
    status, seconds = shopper.get_with(suggest_path(query, settled=True), WIDGET_HEADERS)
    figures.add("GET /api/suggest (settled)", status, seconds)


def search(shopper: LoadShopper, rng: random.Random, figures: Figures, _: Catalog) -> None:
    status, seconds = shopper.get_with(f"/search?q={quote(rng.choice(SEARCHES))}", {})
    figures.add("GET /search", status, seconds)


def chat(shopper: LoadShopper, rng: random.Random, figures: Figures, _: Catalog) -> None:
    answer = shopper.chat(rng.choice(QUESTIONS))
    ok = answer.http_status == 200 and answer.outcome.get("status") == "complete"
    status = answer.http_status if answer.http_status != 200 or ok else 599  # 599: no answer
    if answer.first_token is not None:
        figures.add("POST /api/chat (first token)", status, answer.first_token)
    figures.add("POST /api/chat (whole answer)", status, answer.done or answer.headers or 0.0)


ACTIONS = {"browse": browse, "type-ahead": type_ahead, "search": search, "chat": chat}


@dataclass(frozen=True)
class Catalog:
    products: list[str]
    categories: list[str]
    pages: int


def shopper_loop(port: int, seed: int, stop_at: float, figures: Figures, catalog: Catalog) -> None:
    rng = random.Random(seed)
    names, weights = list(TASKS), list(TASKS.values())
    shopper = LoadShopper(port).start_session()
    try:
        while time.monotonic() < stop_at:
            ACTIONS[rng.choices(names, weights)[0]](shopper, rng, figures, catalog)
    finally:
        shopper.close()


def server_env(instance: Path, database_url: str, redis_url: str, model_url: str) -> dict:
    """Production settings, with the limits lifted: one address is many shoppers here."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SHOPAI_")) and k not in ("SECRET_KEY", "DATABASE_URL")
    }
    unlimited = "1000000 per minute"
    env.update(
        SHOPAI_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        SHOPAI_TRUSTED_HOSTS="127.0.0.1",
        SHOPAI_INSTANCE_PATH=str(instance),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        OPENAI_BASE_URL=model_url,
        OPENAI_API_KEY="fake-key-for-the-bench",
        SHOPAI_EMBEDDING_BACKEND="local",
        SHOPAI_SUGGEST_RATE_LIMIT=unlimited,
        SHOPAI_SUGGEST_EXPANSION_RATE_LIMIT=unlimited,
        SHOPAI_SUGGEST_EXPANSION_GLOBAL_LIMIT=unlimited,
        SHOPAI_CHAT_RATE_LIMIT=unlimited,
        SHOPAI_CHAT_SESSION_RATE_LIMIT=unlimited,
        SHOPAI_CHAT_DAILY_TOKENS=str(10**12),
    )
    return env


def category_slugs() -> list[str]:
    """The categories build_database made: the demo catalog's, by the same slug rule."""
    from shopai.demo import read_demo_catalog
    from shopai.text import slugify

    return [slugify(entry["name"]) for entry in read_demo_catalog()["categories"]]


def shopai(env: dict, *args: str) -> None:
    subprocess.run([SHOPAI, *args], env=env, check=True, stdout=subprocess.DEVNULL)


def wait_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + START_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"shopai serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("shopai serve did not become ready")


def report(figures: Figures, seconds: float, users: int, args: argparse.Namespace) -> None:
    total = sum(figures.statuses.values())
    errors = sum(n for (_, status), n in figures.statuses.items() if status != 200)
    print(
        f"\n{users} shoppers for {seconds:.0f} s against `shopai serve` "
        f"({args.workers} gunicorn workers x {args.threads} threads, 1 job worker) "
        f"on PostgreSQL + Redis, {args.products} products, the fake model"
    )
    print(f"requests: {total}, {total / seconds:.0f} requests/s, errors: {errors / total:.2%}\n")
    print(f"{'endpoint':32} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label in sorted(figures.latencies):
        samples = figures.latencies[label]
        failed = sum(n for (name, s), n in figures.statuses.items() if name == label and s != 200)
        print(
            f"{label:32} {len(samples):8} {percentile(samples, 0.5) * 1000:8.1f} "
            f"{percentile(samples, 0.99) * 1000:8.1f} {failed:7}"
        )
    odd = {key: n for key, n in figures.statuses.items() if key[1] != 200}
    if odd:
        print("\nnot 200:", ", ".join(f"{label} -> {s}: {n}" for (label, s), n in odd.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--users", type=int, default=16, help="shoppers at once")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn web workers")
    parser.add_argument("--threads", type=int, default=16, help="threads per web worker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shopai-load-") as tmp, ExitStack() as running:
        root = Path(tmp)
        (root / "redis").mkdir()
        postgres = PostgresServer.start()
        running.callback(postgres.stop)
        redis = RedisServer(root / "redis").start()
        running.callback(redis.stop)
        fake = running.enter_context(FakeOpenAI())
        server: subprocess.Popen[bytes] | None = None
        try:
            postgres.execute("CREATE DATABASE shopai_load")
            env = server_env(root, postgres.url("shopai_load"), redis.url, fake.base_url)
            print(f"building a shop of {args.products} products on PostgreSQL ...", flush=True)
            os.environ.update(DATABASE_URL=env["DATABASE_URL"])
            slugs = build_database(root, args.products)
            shopai(env, "search", "reindex")
            shopai(env, "embeddings", "rebuild")
            for _ in range(100_000):  # every chat gets a streamed answer of a few words
                fake.reply_stream(FAKE_DELTAS)
            catalog = Catalog(slugs, category_slugs(), pages=max(1, args.products // 12))
            port = free_port()
            server = subprocess.Popen(
                [
                    SHOPAI,
                    "serve",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "--job-workers",
                    "1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_healthy(port, server)
            figures = Figures()
            started = time.monotonic()
            stop_at = started + args.seconds
            shoppers = [
                threading.Thread(target=shopper_loop, args=(port, n, stop_at, figures, catalog))
                for n in range(args.users)
            ]
            for shopper in shoppers:
                shopper.start()
            for shopper in shoppers:
                shopper.join()
            report(figures, time.monotonic() - started, args.users, args)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
