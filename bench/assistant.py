"""Shop assistant benchmark: time to first token and the app's added latency, over HTTP.

    .venv/bin/python bench/assistant.py [--chats 10] [--rounds 2] [--concurrency 8]
                                        [--fake-chats 100] [--fake-rounds 10]
                                        [--reply-tokens 120] [--products 0]

Builds a throwaway SQLite shop (the demo catalog, or `--products N` varied products as
in bench/catalog.py) with its search vectors, then serves it with `shopai serve` (one
gunicorn web worker), in production mode (CSRF on, a session per shopper), and chats with
`POST /api/chat` as the assistant page does (`Accept: text/event-stream`).

1. The embedded model (SmolLM2 via xllamacpp, the default without OPENAI_*): the cold
   first answer (model load), then time to the first `token` event and generation
   speed with one shopper at a time and with `--concurrency` shoppers at once.
2. The app's added latency: the chat model is the fake OpenAI-compatible server from
   tests/, and the same request body the app sends it is also replayed to it directly
   (http.client, stream=true); overhead = app - raw, at p50 and p99.

Prints figures only; it never passes or fails on time. Targets from the issue: first
token under 1 s with the embedded model on a 2-core machine; app overhead under 10 ms.
Rate limits and the daily token budget are raised for the bench, and replies are capped
at `--reply-tokens` (SHOPAI_CHAT_MAX_REPLY_TOKENS; the shop's default is 300).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import click

from catalog import build_database, free_port, percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes

from tests.fakes.openai_server import FakeOpenAI

QUESTIONS = [
    "wireless headphones under $200",
    "a laptop for college",
    "cheap bluetooth speaker",
    "gift for a gamer",
    "4k monitor for photo editing",
    "mesh wifi for a big house",
    "smartwatch that tracks my runs",
    "fast portable ssd",
    "drone with a good camera",
    "推荐一款降噪耳机",
]
# What the fake model answers: plain words (nothing the guard holds back), one per delta.
FAKE_REPLY = (
    "Here are two good choices from the shop. The first is light and quiet, with a long "
    "battery life, and the second is a little larger but sounds richer. Both come with a "
    "carrying case, so either would suit travel well. Tell me more about how you will use "
    "it and I can narrow it down."
)
FAKE_DELTAS = [word if i == 0 else " " + word for i, word in enumerate(FAKE_REPLY.split())]
SERVER_THREADS_OVER_STREAMS = 4  # web threads left for everything but open answers


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def p50_p99(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.5), percentile(samples, 0.99)


# -- the shop ---------------------------------------------------------------------------


def prepare(instance: Path, products: int) -> None:
    """The database: schema, catalog, and every product's search vector."""
    if products:
        build_database(instance, products)  # also sets SHOPAI_ENV and the instance path
    os.environ.update(SHOPAI_ENV="development", SHOPAI_INSTANCE_PATH=str(instance))
    from flask_migrate import upgrade

    from shopai import create_app
    from shopai.demo import load_demo_catalog
    from shopai.extensions import db
    from shopai.search.embeddings import refresh_embeddings, stale_product_ids

    app = create_app()
    with app.app_context():
        if not products:
            upgrade()
            result = load_demo_catalog()
            print(f"demo catalog: {result.products_added} products")
        else:
            print(f"catalog: {products:,} varied products (bench/catalog.py)")
        stale = stale_product_ids()
        with click.progressbar(length=len(stale), label="Embedding the catalog") as bar:
            refresh_embeddings(stale, progress=bar.update)
        db.engine.dispose()


@dataclass
class InProcess:
    """The turn's steps timed inside one process (no HTTP), against the fake model."""

    retrieve_cached: list[float] = field(default_factory=list)
    retrieve_fresh: list[float] = field(default_factory=list)
    begin_turn: list[float] = field(default_factory=list)
    first_token: list[float] = field(default_factory=list)  # run_turn start -> first Token
    stream: list[float] = field(default_factory=list)  # first Token -> last Token
    finish: list[float] = field(default_factory=list)  # last Token -> Done
    found: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def in_process_timings(instance: Path, fake: FakeOpenAI, runs: int) -> InProcess:
    """`retrieve()` alone (each question's vector cached, as when a chat repeats a
    search, and computed afresh), `begin_turn` and `run_turn` called directly, with the
    server's production settings; and what retrieval finds for each question."""
    os.environ.update(
        server_env(
            instance,
            120,
            8,
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY="x",
            SHOPAI_EMBEDDING_BACKEND="local",
        )
    )
    from shopai import create_app
    from shopai.assistant.retrieval import retrieve
    from shopai.assistant.services import (
        Done,
        Token,
        begin_turn,
        new_owner_token,
        owner_hash,
        run_turn,
    )
    from shopai.extensions import db
    from shopai.search.embeddings import QUERY_VECTORS_KEY, QueryVectors

    app = create_app()
    timings = InProcess()
    with app.test_request_context(base_url="http://127.0.0.1/"):  # a trusted host
        for question in QUESTIONS:  # warm: the embedder, the vector index, the cache
            result = retrieve(question)
            category = result.constraints.category
            timings.found[question] = (
                category.name if category else "-",
                [product.name for product in result.products],
            )
        for i in range(runs):
            question = QUESTIONS[i % len(QUESTIONS)]
            started = time.perf_counter()
            retrieve(question)
            timings.retrieve_cached.append(time.perf_counter() - started)
        for i in range(runs):
            app.extensions[QUERY_VECTORS_KEY] = QueryVectors()
            question = QUESTIONS[i % len(QUESTIONS)]
            started = time.perf_counter()
            retrieve(question)
            timings.retrieve_fresh.append(time.perf_counter() - started)
        for i in range(runs + 5):  # the first 5 warm up the model client
            queue_replies(fake, 1)
            question = QUESTIONS[i % len(QUESTIONS)]
            started = time.perf_counter()
            turn = begin_turn(owner_hash(new_owner_token()), None, question)
            begun = time.perf_counter()
            first = last = done = None
            for event in run_turn(turn, "bench"):
                if isinstance(event, Token):
                    last = time.perf_counter()
                    first = first or last
                elif isinstance(event, Done):
                    done = time.perf_counter()
            if i >= 5 and first and last and done:
                timings.begin_turn.append(begun - started)
                timings.first_token.append(first - begun)
                timings.stream.append(last - first)
                timings.finish.append(done - last)
        db.session.remove()
        db.engine.dispose()
    return timings


def server_env(instance: Path, reply_tokens: int, streams: int, **extra: str) -> dict[str, str]:
    """Production settings with the bench's limits; no OPENAI_* unless given in `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SHOPAI_")) and k not in ("SECRET_KEY", "DATABASE_URL")
    }
    env.update(
        SHOPAI_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        SHOPAI_TRUSTED_HOSTS="127.0.0.1",
        SHOPAI_INSTANCE_PATH=str(instance),
        SHOPAI_CHAT_RATE_LIMIT="100000 per minute",
        SHOPAI_CHAT_SESSION_RATE_LIMIT="100000 per minute",
        SHOPAI_CHAT_DAILY_TOKENS=str(10**12),
        SHOPAI_CHAT_MAX_REPLY_TOKENS=str(reply_tokens),
        SHOPAI_CHAT_MAX_STREAMS=str(streams),
        **extra,
    )
    return env


def start_shop(
    port: int, env: dict[str, str], threads: int, log: TextIO
) -> subprocess.Popen[bytes]:
    """`shopai serve` as production runs it (gunicorn gthread), with one web worker of
    more threads than open answers, so every figure is one process's; its log goes to
    `log` for the anomaly report."""
    shopai = Path(sys.executable).with_name("shopai")
    server = subprocess.Popen(
        [
            str(shopai),
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            str(threads),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}); see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def stop_shop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# -- a shopper ----------------------------------------------------------------------------


@dataclass
class Chat:
    question: str
    http_status: int = 0
    started: float = 0.0
    headers: float | None = None  # seconds from sending to the response's headers
    first_token: float | None = None
    last_token: float | None = None
    done: float | None = None
    token_events: int = 0
    held: int = 0  # ": held" comments (the guard holding text back)
    text: str = ""
    errors: list[str] = field(default_factory=list)
    products: int = 0
    outcome: dict[str, Any] = field(default_factory=dict)  # the `done` event's data
    refusal: str = ""

    @property
    def status(self) -> str:
        if self.http_status != 200:
            return f"HTTP {self.http_status}"
        return str(self.outcome.get("status", "no done event"))


class Shopper:
    """One browser: its own session cookie and CSRF token, one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self._cookie_header())
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        self._keep_cookies(response)
        return response.status, body, elapsed

    def start_session(self) -> Shopper:
        status, body, _ = self.get("/csrf-token")
        if status != 200:
            raise SystemExit(f"GET /csrf-token -> {status}: {body[:200]!r}")
        self.csrf = json.loads(body)["csrf_token"]
        return self

    def chat(self, question: str) -> Chat:
        chat = Chat(question)
        body = json.dumps({"message": question}).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-CSRFToken": self.csrf,
            **self._cookie_header(),
        }
        chat.started = started = time.perf_counter()
        self.conn.request("POST", "/api/chat", body, headers)
        response = self.conn.getresponse()
        chat.headers = time.perf_counter() - started
        chat.http_status = response.status
        self._keep_cookies(response)
        if response.status != 200:
            chat.refusal = response.read().decode(errors="replace")[:300]
            return chat
        event, data = "message", ""
        while line := response.readline():
            now = time.perf_counter() - started
            line = line.rstrip(b"\r\n")
            if line.startswith(b":"):
                chat.held += 1
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data += line[5:].strip().decode()
            elif not line:  # the end of one event
                if data:
                    self._event(chat, event, json.loads(data), now)
                event, data = "message", ""
        return chat

    @staticmethod
    def _event(chat: Chat, event: str, data: dict[str, Any], now: float) -> None:
        if event == "token":
            if chat.first_token is None:
                chat.first_token = now
            chat.last_token = now
            chat.token_events += 1
            chat.text += data.get("text", "")
        elif event == "products":
            chat.products = len(data.get("products", []))
        elif event == "error":
            chat.errors.append(data.get("message", ""))
        elif event == "done":
            chat.done = now
            chat.outcome = data

    def close(self) -> None:
        self.conn.close()


def chats_at_once(
    port: int, questions: list[str], on_done: Callable[[], None] | None = None
) -> tuple[list[Chat], float]:
    """One chat per question, all at once, each from its own new session; returns the
    chats and the wall time from the common start to the last `done`."""
    shoppers = [Shopper(port).start_session() for _ in questions]
    chats: list[Chat | None] = [None] * len(questions)
    barrier = threading.Barrier(len(questions) + 1)

    def run(slot: int) -> None:
        barrier.wait()
        chats[slot] = shoppers[slot].chat(questions[slot])
        if on_done:
            on_done()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(questions))]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    for shopper in shoppers:
        shopper.close()
    return [c for c in chats if c is not None], wall


def chats_in_turn(port: int, questions: list[str], label: str) -> list[Chat]:
    """One chat after another, each from its own new session."""
    chats = []
    with click.progressbar(questions, label=label) as bar:
        for question in bar:
            shopper = Shopper(port).start_session()
            chats.append(shopper.chat(question))
            shopper.close()
    return chats


def rounds_at_once(
    port: int, rounds: int, concurrency: int, label: str
) -> tuple[list[Chat], float]:
    chats: list[Chat] = []
    wall = 0.0
    with click.progressbar(length=rounds * concurrency, label=label) as bar:
        for r in range(rounds):
            questions = [
                QUESTIONS[(r * concurrency + i) % len(QUESTIONS)] for i in range(concurrency)
            ]
            got, seconds = chats_at_once(port, questions, on_done=lambda: bar.update(1))
            chats += got
            wall += seconds
    return chats, wall


def saved_answers(instance: Path, ids: list[int]) -> dict[int, tuple[int, str, str]]:
    """(completion_tokens, status, content) of saved answers, read from the database."""
    if not ids:
        return {}
    wanted = set(ids)
    with sqlite3.connect(instance / "shopai.db") as conn:
        rows = conn.execute(
            "SELECT id, completion_tokens, status, content FROM chat_message "
            "WHERE role = 'assistant'"
        ).fetchall()
    rows = [row for row in rows if row[0] in wanted]
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def looks_wrong(text: str) -> str:
    """Why an answer looks broken, or "": it repeats itself, or echoes the prompt."""
    pieces = [p.strip() for p in text.replace("\n", ".").split(".") if len(p.strip()) >= 20]
    repeated = [piece for piece, n in Counter(pieces).items() if n >= 3]
    if repeated:
        return f"repeats {repeated[0][:60]!r} {Counter(pieces)[repeated[0]]} times"
    for marker in ("Shopper:", "PRODUCTS", "You are the shopping assistant"):
        if marker in text:
            return f"echoes the prompt ({marker!r})"
    return ""


def describe(chats: list[Chat]) -> str:
    counts = Counter(c.status for c in chats)
    errors = sum(len(c.errors) for c in chats)
    text = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    return text + (f"; {errors} error events" if errors else "")


def anomalies(chats: list[Chat], notes: list[str], phase: str) -> None:
    for chat in chats:
        if chat.http_status != 200:
            notes.append(f"{phase}: {chat.question!r} -> HTTP {chat.http_status} {chat.refusal}")
        elif chat.status != "complete":
            notes.append(
                f"{phase}: {chat.question!r} ended {chat.status!r} "
                f"(notice {chat.outcome.get('notice')!r}, errors {chat.errors})"
            )
        elif not chat.text.strip():
            notes.append(f"{phase}: {chat.question!r} complete but empty")
        elif why := looks_wrong(chat.text):
            notes.append(f"{phase}: the answer to {chat.question!r} {why}")
        elif chat.first_token is None:
            notes.append(f"{phase}: {chat.question!r} complete without a token event")


# -- 1. the embedded model -----------------------------------------------------------------


def token_figures(instance: Path, chats: list[Chat], wall: float | None) -> tuple[str, float]:
    ids = [c.outcome["message_id"] for c in chats if "message_id" in c.outcome]
    saved = saved_answers(instance, ids)
    rates, total = [], 0
    for chat in from_model(chats):
        row = saved.get(chat.outcome.get("message_id", -1))
        if row is None or chat.first_token is None or chat.last_token is None:
            continue
        total += row[0]
        if row[0] > 1 and chat.last_token > chat.first_token:
            rates.append((row[0] - 1) / (chat.last_token - chat.first_token))
    if not rates:
        return "no token figures", float("nan")
    text = (
        f"per chat {statistics.median(rates):.0f} tokens/s (median; tokens after the first "
        f"over first-to-last token event)"
    )
    if wall:
        text += f", all chats together {total / wall:.0f} tokens/s"
    return text + f", {total / len(rates):.0f} tokens per answer", statistics.median(rates)


def from_model(chats: list[Chat]) -> list[Chat]:
    """Chats the model answered (in full or cut off): search-only answers ("limited",
    when the model is down, slow or its breaker open) come at once and would flatter."""
    return [c for c in chats if c.status in ("complete", "failed", "stopped")]


def print_ttft(label: str, chats: list[Chat]) -> None:
    answered = from_model(chats)
    firsts = [c.first_token for c in answered if c.first_token is not None]
    dones = [c.done for c in answered if c.done is not None]
    if not firsts:
        print(f"  {label}: no token event at all ({describe(chats)})")
        return
    f50, f99 = p50_p99(firsts)
    d50, d99 = p50_p99(dones) if dones else (float("nan"), float("nan"))
    print(
        f"  {label:<22} first token p50 {ms(f50)} ms  p99 {ms(f99)} ms   "
        f"done p50 {d50:5.2f} s  p99 {d99:5.2f} s   [{describe(chats)}; figures over "
        f"the {len(firsts)} the model answered]"
    )


def embedded_direct(
    instance: Path, args: argparse.Namespace, notes: list[str]
) -> list[tuple[float, float, int]]:
    """The embedded model without HTTP or the turn around it: in this process, the app's
    own client and prompt (retrieve + build_messages) for the same questions. Returns
    (first text delta, last, completion tokens) per call, after one warm-up call."""
    os.environ.update(server_env(instance, args.reply_tokens, 8))
    from shopai import create_app
    from shopai.ai.errors import AIError
    from shopai.ai.types import TextDelta
    from shopai.ai_service import ai_client
    from shopai.assistant.prompt import build_messages
    from shopai.assistant.retrieval import retrieve
    from shopai.assistant.services import prompt_budget
    from shopai.extensions import db

    app = create_app()
    results = []
    with app.test_request_context(base_url="http://127.0.0.1/"):  # a trusted host
        questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.direct_chats + 1)]
        with click.progressbar(questions, label="  model called directly") as bar:
            for question in bar:
                products = retrieve(question).products
                messages = build_messages([], question, products, prompt_budget())
                db.session.commit()
                started = time.perf_counter()
                first = last = None
                try:
                    stream = ai_client().stream(
                        "chat", messages, max_tokens=args.reply_tokens, temperature=0.3
                    )
                    with stream:
                        for event in stream:
                            if isinstance(event, TextDelta):
                                last = time.perf_counter() - started
                                first = first or last
                except AIError as exc:
                    notes.append(f"model called directly: {question!r} failed: {exc}")
                    continue
                tokens = stream.usage.completion_tokens if stream.usage else 0
                if first is not None and last is not None:
                    results.append((first, last, tokens))
        db.session.remove()
        db.engine.dispose()
    return results[1:]


def bench_embedded(
    instance: Path, args: argparse.Namespace, log: TextIO, notes: list[str]
) -> dict[str, float]:
    print(
        "\n1. embedded model (SmolLM2-135M-Instruct via xllamacpp, no OPENAI_*), "
        f"replies capped at {args.reply_tokens} tokens"
    )
    port = free_port()
    streams = max(8, args.concurrency)
    env = server_env(instance, args.reply_tokens, streams)
    server = start_shop(port, env, streams + SERVER_THREADS_OVER_STREAMS, log)
    figures: dict[str, float] = {}
    try:
        shopper = Shopper(port).start_session()
        status, _, first_search = shopper.get(f"/api/products?q={quote(QUESTIONS[0])}")
        print(
            f"  first search (loads the embeddings model): {first_search * 1000:.0f} ms ({status})"
        )
        cold = shopper.chat(QUESTIONS[0])
        shopper.close()
        anomalies([cold], notes, "embedded cold")
        if cold.first_token is not None:
            figures["cold"] = cold.first_token
            print(
                "  cold first answer (the first chat after the server started; the model "
                "loads in the background from the first request): first token "
                f"{cold.first_token:.2f} s, "
                f"done {cold.done or float('nan'):.2f} s [{cold.status}]"
            )
        sample = cold.text.replace("\n", " ")
        print(f"  sample answer to {cold.question!r}: {sample[:240]!r}")
        print(f"    cards: {cold.products}; status {cold.status}")

        in_turn = chats_in_turn(
            port, [QUESTIONS[i % len(QUESTIONS)] for i in range(args.chats)], "  one at a time"
        )
        anomalies(in_turn, notes, "embedded, one at a time")
        for chat in in_turn[1:4]:
            sample = " ".join(chat.text.split())
            print(f"  answer to {chat.question!r} [{chat.status}]: {sample[:200]!r}")
        at_once, wall = rounds_at_once(
            port, args.rounds, args.concurrency, f"  {args.concurrency} at once"
        )
        anomalies(at_once, notes, f"embedded, {args.concurrency} at once")
    finally:
        stop_shop(server)
    print_ttft("1 chat at a time", in_turn)
    text, figures["rate1"] = token_figures(instance, in_turn, None)
    print(f"    {text}")
    print_ttft(f"{args.concurrency} chats at once", at_once)
    text, figures["rate8"] = token_figures(instance, at_once, wall)
    print(f"    {text}")
    saved = saved_answers(instance, [c.outcome["message_id"] for c in in_turn if c.outcome])
    empty = [c.question for c in in_turn if c.outcome and not saved[c.outcome["message_id"]][2]]
    if empty:
        notes.append(f"embedded: answers saved empty for {empty}")
    for key, chats in (("ttft1", in_turn), ("ttft8", at_once)):
        firsts = [c.first_token for c in from_model(chats) if c.first_token is not None]
        if firsts:
            figures[key + "_p50"], figures[key + "_p99"] = p50_p99(firsts)
    direct = embedded_direct(instance, args, notes)
    if direct:
        f50, f99 = p50_p99([d[0] for d in direct])
        rates = [(d[2] - 1) / (d[1] - d[0]) for d in direct if d[2] > 1 and d[1] > d[0]]
        figures["direct_p50"] = f50
        print(
            f"  {'model called directly':<22} first token p50 {ms(f50)} ms  p99 {ms(f99)} ms   "
            f"(in this process, the app's prompt, no HTTP; {len(direct)} calls)"
        )
        if rates:
            print(f"    {statistics.median(rates):.0f} tokens/s per call (median, usage report)")
    print(
        "  completion tokens: chat_message.completion_tokens as saved by the app (the "
        "backend's usage report; the app estimates from the text only without one)"
    )
    return figures


# -- 2. the app's added latency --------------------------------------------------------------


@dataclass
class Raw:
    first: float
    end: float


def raw_stream(conn: http.client.HTTPConnection, body: bytes) -> Raw:
    """The fake model called directly: first content chunk, and [DONE]."""
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first = end = None
    while line := response.readline():
        if line.startswith(b"data: [DONE]"):
            end = time.perf_counter() - started
        elif line.startswith(b"data:") and first is None:
            first = time.perf_counter() - started
    if response.status != 200 or first is None or end is None:
        raise SystemExit(f"raw stream from the fake model failed: HTTP {response.status}")
    return Raw(first, end)


def raw_at_once(fake: FakeOpenAI, body: bytes, rounds: int, concurrency: int) -> list[Raw]:
    host, port = fake.host, fake.port
    results: list[Raw] = []
    lock = threading.Lock()
    for _ in range(rounds):
        conns = [http.client.HTTPConnection(host, port, timeout=60) for _ in range(concurrency)]
        for conn in conns:
            # Connected one by one: the fake's listen backlog is 5, and a dropped SYN
            # costs a 1 s retransmission that has nothing to do with streaming.
            conn.connect()
        barrier = threading.Barrier(concurrency)

        def run(conn: http.client.HTTPConnection, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            result = raw_stream(conn, body)
            with lock:
                results.append(result)

        workers = [threading.Thread(target=run, args=(c,)) for c in conns]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for conn in conns:
            conn.close()
    return results


def queue_replies(fake: FakeOpenAI, count: int) -> None:
    for _ in range(count):
        fake.reply_stream(FAKE_DELTAS)


def overhead_rows(label: str, raws: list[Raw], chats: list[Chat]) -> list[tuple[str, float]]:
    raw_first, raw_end = p50_p99([r.first for r in raws]), p50_p99([r.end for r in raws])
    app_first = p50_p99([c.first_token for c in chats if c.first_token is not None])
    app_done = p50_p99([c.done for c in chats if c.done is not None])
    print(f"  {label} [{describe(chats)}]")
    print(f"    {'':<30} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"    {'raw: first chunk':<30} {ms(raw_first[0])} {ms(raw_first[1])}")
    print(f"    {'app: first token event':<30} {ms(app_first[0])} {ms(app_first[1])}")
    print(
        f"    {'  overhead':<30} {ms(app_first[0] - raw_first[0])} "
        f"{ms(app_first[1] - raw_first[1])}"
    )
    print(f"    {'raw: [DONE]':<30} {ms(raw_end[0])} {ms(raw_end[1])}")
    print(f"    {'app: done event':<30} {ms(app_done[0])} {ms(app_done[1])}")
    print(f"    {'  overhead':<30} {ms(app_done[0] - raw_end[0])} {ms(app_done[1] - raw_end[1])}")
    return [
        ("first_p50", app_first[0] - raw_first[0]),
        ("first_p99", app_first[1] - raw_first[1]),
        ("done_p50", app_done[0] - raw_end[0]),
        ("done_p99", app_done[1] - raw_end[1]),
    ]


def bench_overhead(
    instance: Path, args: argparse.Namespace, log: TextIO, notes: list[str]
) -> dict[str, float]:
    print(
        f"\n2. the app's added latency (fake OpenAI-compatible model in this process, "
        f"{len(FAKE_DELTAS)} deltas per reply, sent at once)"
    )
    figures: dict[str, float] = {}
    with FakeOpenAI() as fake:
        port = free_port()
        streams = max(8, args.concurrency)
        env = server_env(
            instance,
            args.reply_tokens,
            streams,
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY="x",
            SHOPAI_EMBEDDING_BACKEND="local",
        )
        server = start_shop(port, env, streams + SERVER_THREADS_OVER_STREAMS, log)
        try:
            queue_replies(fake, 20 + 2 * args.concurrency)
            warm = chats_in_turn(port, QUESTIONS, "  warm-up")
            # and at once, so the app holds a connection to the model per open answer
            warm += chats_at_once(port, QUESTIONS[: args.concurrency])[0]
            warm += chats_at_once(port, QUESTIONS[: args.concurrency])[0]
            anomalies(warm, notes, "fake warm-up")
            sent = fake.requests_to("/chat/completions")
            if not sent:
                stop_shop(server)
                print_notes(notes, log.name)
                raise SystemExit("the app never called the model; see the anomalies above")
            body = sent[-1].raw  # what the app sends
            request = json.loads(body)
            print(
                f"  the app's request: model {request.get('model')!r}, "
                f"{len(request.get('messages', []))} messages, {len(body):,} bytes, "
                f"stream_options {request.get('stream_options')}"
            )
            calls_before = len(fake.requests_to("/chat/completions"))

            queue_replies(fake, args.fake_chats)
            conn = http.client.HTTPConnection(fake.host, fake.port, timeout=60)
            raw_one = [raw_stream(conn, body) for _ in range(args.fake_chats)]
            conn.close()
            queue_replies(fake, args.fake_chats)
            questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.fake_chats)]
            app_one = chats_in_turn(port, questions, "  app, one at a time")
            anomalies(app_one, notes, "fake, one at a time")

            n = args.fake_rounds * args.concurrency
            queue_replies(fake, n)
            raw_many = raw_at_once(fake, body, args.fake_rounds, args.concurrency)
            queue_replies(fake, n)
            app_many, _ = rounds_at_once(
                port, args.fake_rounds, args.concurrency, f"  app, {args.concurrency} at once"
            )
            anomalies(app_many, notes, f"fake, {args.concurrency} at once")
            app_calls = len(fake.requests_to("/chat/completions")) - calls_before - len(raw_one) - n
            chats = len(app_one) + len(app_many)
            if app_calls != chats:
                notes.append(f"fake: {chats} chats made {app_calls} model calls")
            if fake.errors:
                notes.append(f"fake server errors: {fake.errors[:3]}")

            # Where the time goes: a bare request, the search API, retrieval alone.
            shopper = Shopper(port).start_session()
            bare = [shopper.get("/csrf-token")[2] for _ in range(100)]
            search = [
                shopper.get(f"/api/products?q={quote(QUESTIONS[i % len(QUESTIONS)])}")[2]
                for i in range(100)
            ]
            shopper.close()
        finally:
            stop_shop(server)
        steps = in_process_timings(instance, fake, args.fake_chats)

    saved = saved_answers(instance, [c.outcome["message_id"] for c in app_one if c.outcome])
    wrong = Counter(row[0] for row in saved.values() if row[0] != len(FAKE_DELTAS))
    if wrong:
        notes.append(
            f"fake: saved completion_tokens {dict(wrong)} where the backend reported "
            f"{len(FAKE_DELTAS)}"
        )
    texts = Counter(c.text for c in app_one)
    if texts and texts.most_common(1)[0][0] != FAKE_REPLY:
        notes.append(f"fake: streamed text differs from the reply: {texts.most_common(2)}")

    for label, raws, chats in (
        ("1 chat at a time", raw_one, app_one),
        (f"{args.concurrency} chats at once", raw_many, app_many),
    ):
        key = "one" if raws is raw_one else "many"
        for name, value in overhead_rows(label, raws, chats):
            figures[f"{key}_{name}"] = value

    headers = [c.headers for c in app_one if c.headers is not None]
    app_first = [c.first_token for c in app_one if c.first_token is not None]
    app_rest = [c.done - c.first_token for c in app_one if c.done and c.first_token]

    def row(label: str, samples: list[float]) -> None:
        p50, p99 = p50_p99(samples)
        print(f"    {label:<56} {ms(p50)} {ms(p99)}")

    print(f"  where the app's time goes, 1 chat at a time {'p50 ms':>24} {'p99 ms':>8}")
    print("   over HTTP")
    row("GET /csrf-token (a bare request)", bare)
    row("GET /api/products?q=<question> (the search API)", search)
    row("POST /api/chat: response headers (sent with the 1st event)", headers)
    row("POST /api/chat: first token event", app_first)
    row("POST /api/chat: first token -> done event", app_rest)
    print("   in process (no HTTP), same database and settings")
    row("retrieve(question), its vector cached", steps.retrieve_cached)
    row("retrieve(question), its vector computed", steps.retrieve_fresh)
    row("begin_turn (checks, saves question and empty answer)", steps.begin_turn)
    row("run_turn: start -> first Token (retrieve, model's 1st chunk)", steps.first_token)
    row(f"run_turn: first Token -> last ({len(FAKE_DELTAS)} deltas, the guard)", steps.stream)
    row("run_turn: last Token -> Done (save, usage, cards, html)", steps.finish)
    figures["retrieve_p50"] = p50_p99(steps.retrieve_cached)[0]
    figures["begin_p50"] = p50_p99(steps.begin_turn)[0]
    figures["turn_first_p50"] = p50_p99(steps.first_token)[0]
    print("  what retrieval hands the model (category filter: products)")
    for question, (category, names) in steps.found.items():
        print(f"    {question!r}  [{category}]: {'; '.join(names)[:150]}")
    return figures


# -- main ---------------------------------------------------------------------------------------


def server_log_notes(path: Path, notes: list[str]) -> None:
    """The servers' errors and warnings, and the exceptions of their tracebacks, counted."""
    flagged: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith(("INFO:", "WARNING:", "ERROR:")):
            continue  # the same records again, from the root logger's handler
        if " ERROR " in line or " WARNING " in line:
            flagged[line.split("] ", 1)[-1][:200]] += 1  # without time and request id
        elif (
            line
            and not line.startswith(("File ", "Traceback", "^", "~"))
            and ("Error: " in line or "Exception: " in line)
        ):
            flagged[line[:200]] += 1
    for line, count in flagged.most_common(10):
        notes.append(f"server log ({count}x): {line}")


def print_notes(notes: list[str], log_path: str | None = None) -> None:
    if log_path:
        server_log_notes(Path(log_path), notes)
    if notes:
        print("\nanomalies")
        for note in notes:
            print(f"  - {note}")
    else:
        print("\nno anomalies: every chat answered 200 and ended 'complete'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=10, help="embedded: chats one at a time")
    parser.add_argument("--rounds", type=int, default=2, help="embedded: rounds of chats at once")
    parser.add_argument("--concurrency", type=int, default=8, help="chats at once")
    parser.add_argument(
        "--direct-chats", type=int, default=4, help="embedded: calls without the app"
    )
    parser.add_argument("--fake-chats", type=int, default=100, help="fake model: chats in turn")
    parser.add_argument("--fake-rounds", type=int, default=10, help="fake model: rounds at once")
    parser.add_argument(
        "--reply-tokens", type=int, default=120, help="SHOPAI_CHAT_MAX_REPLY_TOKENS"
    )
    parser.add_argument("--products", type=int, default=0, help="0: the demo catalog")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--log", type=Path, help="keep the servers' log here")
    args = parser.parse_args()

    notes: list[str] = []
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="shopai-bench-") as tmp:
        instance = Path(tmp)
        log_path = args.log or instance / "server.log"
        started = time.perf_counter()
        prepare(instance, args.products)
        print(f"database ready in {time.perf_counter() - started:.1f} s")
        with log_path.open("w") as log:
            embedded = {} if args.skip_embedded else bench_embedded(instance, args, log, notes)
            overhead = bench_overhead(instance, args, log, notes)
        server_log_notes(log_path, notes)

    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("summary")
    if embedded:
        print(
            f"  embedded model, first token: cold {embedded.get('cold', float('nan')):.2f} s; "
            f"1 chat p50 {embedded.get('ttft1_p50', float('nan')):.2f} s "
            f"p99 {embedded.get('ttft1_p99', float('nan')):.2f} s; "
            f"{args.concurrency} at once p50 {embedded.get('ttft8_p50', float('nan')):.2f} s "
            f"p99 {embedded.get('ttft8_p99', float('nan')):.2f} s   [target < 1 s]"
        )
        print(
            f"    the model alone (no app, same prompt): first token p50 "
            f"{embedded.get('direct_p50', float('nan')):.2f} s; generation through the app "
            f"{embedded.get('rate1', float('nan')):.0f} tokens/s per chat (1 at a time), "
            f"{embedded.get('rate8', float('nan')):.0f} ({args.concurrency} at once)"
        )
    print(
        f"  app overhead to the first token: 1 chat p50 {overhead['one_first_p50'] * 1000:.1f} ms "
        f"p99 {overhead['one_first_p99'] * 1000:.1f} ms; {args.concurrency} at once "
        f"p50 {overhead['many_first_p50'] * 1000:.1f} ms "
        f"p99 {overhead['many_first_p99'] * 1000:.1f} ms   [target < 10 ms]"
    )
    print(
        f"  app overhead to the end: 1 chat p50 {overhead['one_done_p50'] * 1000:.1f} ms "
        f"p99 {overhead['one_done_p99'] * 1000:.1f} ms; {args.concurrency} at once "
        f"p50 {overhead['many_done_p50'] * 1000:.1f} ms "
        f"p99 {overhead['many_done_p99'] * 1000:.1f} ms"
    )
    print(
        f"  in process, p50: begin_turn {overhead['begin_p50'] * 1000:.1f} ms, run_turn to "
        f"its first token {overhead['turn_first_p50'] * 1000:.1f} ms, of which retrieval "
        f"{overhead['retrieve_p50'] * 1000:.1f} ms"
    )
    print(
        "  (overhead = app percentile - raw percentile; at once, the client, the fake model and "
        "the shop share 2 cores)"
    )
    print_notes(notes)


if __name__ == "__main__":
    main()
