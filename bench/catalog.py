"""Catalog benchmark: 10,000 products, real HTTP, p50/p99 latency and requests/s.

    .venv/bin/python bench/catalog.py [--products 10000] [--requests 300]

Builds a throwaway SQLite shop from the demo catalog (varied into N products),
serves it with waitress in a separate process, and measures the product list,
a product page, the search page and the JSON search API. Prints figures only;
it never passes or fails on time (target from the issue: search p99 < 20 ms).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

QUERIES = [
    "wireless",
    "headph",
    "noise cancelling",
    "laptop 16",
    "usb-c cable",
    "4k monitor",
    "gaming mouse",
    "ssd 2tb",
    "bluetooth speaker",
    "smart plug",
    "drone camera",
    "mesh wifi",
    "mechanical keyboard",
    "oled tv",
    "fast charger",
    "a",
    "k",
    "4k",
    "usb c",
]
VARIANTS = ["", "Mk II", "Pro", "Lite", "Max", "SE", "Plus", "Mini", "Ultra", "Gen 3", "Studio"]


def build_database(instance: Path, count: int) -> list[str]:
    """Create the schema with the real migrations and insert `count` products; return slugs."""
    os.environ.update(SHOPAI_ENV="development", SHOPAI_INSTANCE_PATH=str(instance))
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from shopai import create_app
    from shopai.catalog.models import Category, Product
    from shopai.db_types import utcnow
    from shopai.demo import read_demo_catalog
    from shopai.extensions import db
    from shopai.text import slugify

    app = create_app()
    data = read_demo_catalog()
    rng = random.Random(7)
    with app.app_context():
        upgrade()
        ids = {}
        for entry in data["categories"]:
            category = Category(
                name=entry["name"], slug=slugify(entry["name"]), description=entry["description"]
            )
            db.session.add(category)
            db.session.flush()
            ids[entry["name"]] = category.id
        rows, slugs, seen = [], [], set()
        while len(rows) < count:
            base = rng.choice(data["products"])
            name = f"{base['name']} {rng.choice(VARIANTS)} {len(rows)}".replace("  ", " ")
            slug = slugify(name)
            if slug in seen:
                continue
            seen.add(slug)
            price = (Decimal(base["price"]) * Decimal(rng.uniform(0.8, 1.2))).quantize(
                Decimal("0.01")
            )
            now = utcnow()
            rows.append(
                {
                    "name": name,
                    "slug": slug,
                    "description": base["description"],
                    "price": price,
                    "category_id": ids[base["category"]],
                    "featured": rng.random() < 0.01,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            slugs.append(slug)
        db.session.execute(insert(Product), rows)
        db.session.commit()
        db.engine.dispose()
    return slugs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(instance: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPAI_ENV": "development", "SHOPAI_INSTANCE_PATH": str(instance)}
    waitress = Path(sys.executable).with_name("waitress-serve")
    server = subprocess.Popen(
        [
            str(waitress),
            "--listen",
            f"127.0.0.1:{port}",
            "--threads",
            "4",
            "--call",
            "shopai:create_app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def timed_get(conn: http.client.HTTPConnection, path: str) -> float:
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"GET {path} -> {response.status}")
    return elapsed


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(port: int, paths: list[str], requests: int, threads: int = 4) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for path in paths[:20]:  # warm-up
        timed_get(conn, path)
    latencies = [timed_get(conn, paths[i % len(paths)]) for i in range(requests)]
    conn.close()

    done = [0] * threads
    stop = time.monotonic() + 2.0

    def hammer(slot: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port)
        i = slot
        while time.monotonic() < stop:
            timed_get(c, paths[i % len(paths)])
            done[slot] += 1
            i += threads
        c.close()

    start = time.monotonic()
    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    return {
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "mean": statistics.fmean(latencies) * 1000,
        "rps": sum(done) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shopai-bench-") as tmp:
        instance = Path(tmp)
        started = time.perf_counter()
        slugs = build_database(instance, args.products)
        print(f"built {args.products:,} products in {time.perf_counter() - started:.1f} s")
        port = free_port()
        server = start_server(instance, port)
        rng = random.Random(11)
        try:
            scenarios = {
                "product list": [f"/products/{n}" for n in range(1, 200)],
                "product page": [f"/product/{quote(rng.choice(slugs))}" for _ in range(200)],
                "search page": [f"/search?q={quote(q)}" for q in QUERIES],
                "search filtered": [
                    f"/search?q={quote(q)}&min_price=20&max_price=900&sort=price_asc"
                    for q in QUERIES
                ],
                "api search": [f"/api/products?q={quote(q)}" for q in QUERIES],
            }
            print(
                f"{'scenario':<16} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s 4 conn':>13}"
            )
            for name, paths in scenarios.items():
                figures = measure(port, paths, args.requests)
                print(
                    f"{name:<16} {figures['p50']:8.2f} {figures['p99']:8.2f} "
                    f"{figures['mean']:8.2f} {figures['rps']:13.0f}"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
