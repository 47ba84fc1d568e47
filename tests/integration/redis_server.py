"""A real `redis-server` for the tests: loopback, a free port, a temporary folder, no
persistence, stopped afterwards. Never the machine's own Redis service."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

import redis

from .ports import free_port

REDIS_SERVER = "redis-server"
START_LIMIT_SECONDS = 30.0  # reaching it is a failure; nothing waits for it otherwise
STOP_LIMIT_SECONDS = 30.0


class RedisServerError(RuntimeError):
    pass


class RedisServer:
    """`start()` runs one on a free loopback port; `url` is its database 0."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        executable = shutil.which(REDIS_SERVER)
        if executable is None:
            raise RedisServerError(
                "redis-server is missing: `make test` installs Debian's redis-server package"
            )
        for _attempt in range(3):  # another process may take the port between probe and bind
            self.port = free_port()
            self._log = (self.folder / "redis.log").open("ab")
            self.process = subprocess.Popen(  # noqa: S603 - Debian's redis-server
                [
                    executable,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--dir", str(self.folder),
                    "--save", "",
                    "--appendonly", "no",
                    "--protected-mode", "yes",
                    "--daemonize", "no",
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            if self._wait_ready():
                return self
            self.stop()
        raise RedisServerError(f"redis-server did not start; see {self.folder / 'redis.log'}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_LIMIT_SECONDS
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # the port was taken, most likely
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=1) as client:
                    if client.ping():
                        return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()  # SIGTERM: Redis exits at once (nothing to save)
            try:
                process.wait(timeout=STOP_LIMIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
