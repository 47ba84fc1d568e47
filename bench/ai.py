"""AI client benchmark: the embedded model's speed and the client's own overhead.

    .venv/bin/python bench/ai.py [--calls 300]

Prints: embedded SmolLM2 load time, time to first token, generation tokens/s;
local embeddings per query and batched; renderer time per card; and the AIClient's
overhead per call over a raw HTTP request to the fake OpenAI server (target < 2 ms).
Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes

from tests.fakes.openai_server import FakeOpenAI

from shopai.ai.client import AIClient
from shopai.ai.embeddings import LocalEmbedder
from shopai.ai.local_backend import LocalModelConfig, default_gguf_path, local_server
from shopai.ai.renderer import render_product_card
from shopai.ai.settings import AISettings

PROMPT = [{"role": "user", "content": "Describe a pair of wireless headphones for a shop page."}]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {ms(p50)}, p99 {ms(p99)}"


def bench_embedded_model(runs: int = 4) -> None:
    print("embedded text model (SmolLM2-135M-Instruct Q4_1 via xllamacpp)")
    config = LocalModelConfig(default_gguf_path())
    server = local_server(config)
    started = time.perf_counter()
    server.base_url()
    print(f"  load: {time.perf_counter() - started:.2f} s")
    client = AIClient(AISettings.from_env({"SHOPAI_CHAT_TIMEOUT": "300"}))
    ttfts, rates = [], []
    for _ in range(runs):
        started = time.perf_counter()
        first = None
        with client.stream("chat", PROMPT, max_tokens=128) as stream:
            for _delta in stream.text_deltas():
                if first is None:
                    first = time.perf_counter() - started
        total = time.perf_counter() - started
        tokens = stream.usage.completion_tokens if stream.usage else 0
        ttfts.append(first or total)
        rates.append(tokens / max(total - (first or 0), 1e-9))
    print(f"  time to first token: cold {ms(ttfts[0])}, warm {ms(statistics.median(ttfts[1:]))}")
    print(f"  generation: {statistics.median(rates):.0f} tokens/s")
    client.close()


def bench_embeddings() -> None:
    print("embedded embeddings (all-MiniLM-L6-v2 int8, onnxruntime)")
    embedder = LocalEmbedder()
    started = time.perf_counter()
    embedder.embed(["warm up"])
    print(f"  load: {time.perf_counter() - started:.2f} s")
    singles = []
    for i in range(100):
        started = time.perf_counter()
        embedder.embed([f"wireless noise cancelling headphones {i}"])
        singles.append(time.perf_counter() - started)
    print(f"  one query: {percentiles(singles)}")
    names = [f"Kestrel Audio K{i} Wireless Headphones with ANC" for i in range(200)]
    started = time.perf_counter()
    embedder.embed(names)
    print(f"  batched: {200 / (time.perf_counter() - started):.0f} texts/s")


def bench_renderer() -> None:
    times = []
    for i in range(10):
        started = time.perf_counter()
        render_product_card(f"Kestrel Audio K{i} Wireless Headphones", "Headphones")
        times.append(time.perf_counter() - started)
    print(f"offline renderer: 1024x1024 card in {ms(statistics.median(times))} (median of 10)")


def bench_overhead(calls: int) -> None:
    print(f"client overhead against the fake server ({calls} sequential calls each)")
    with FakeOpenAI() as fake:
        host, port = fake.base_url.split("//")[1].split("/")[0].split(":")
        body = json.dumps({"model": "m", "messages": PROMPT}).encode()
        conn = http.client.HTTPConnection(host, int(port))
        raw = []
        for _ in range(calls):
            started = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            raw.append(time.perf_counter() - started)
        conn.close()
        client = AIClient(
            AISettings.from_env({"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": fake.base_url}),
            on_usage=lambda event: None,
        )
        wrapped = []
        for _ in range(calls):
            started = time.perf_counter()
            client.chat("chat", PROMPT)
            wrapped.append(time.perf_counter() - started)
        client.close()
    print(f"  raw HTTP:  {percentiles(raw)}")
    print(f"  AIClient:  {percentiles(wrapped)}")
    overhead = statistics.median(wrapped) - statistics.median(raw)
    print(f"  overhead per call (median difference): {ms(overhead)}  [target < 2 ms]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    bench_embedded_model()
    bench_embeddings()
    bench_renderer()
    bench_overhead(args.calls)


if __name__ == "__main__":
    main()
