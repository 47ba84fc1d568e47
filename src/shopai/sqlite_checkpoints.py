"""SQLite's WAL checkpoints run on a thread of their own, not in a shopper's commit.

In WAL mode a commit appends to the log, and SQLite copies the log back into the
database file (a checkpoint, with an fsync) in whichever commit first finds the log
over `wal_autocheckpoint` pages: by default every 1,000 pages, so about one request in
a hundred paid 5 ms instead of 0.4 for saving a chat message (measured in process on
the demo shop), and that was the p99 of the assistant's first token.

Here every commit only tells a `Checkpointer` (a `background.BackgroundWriter`: one
thread per process, idle ones exit, forks handled) that the log grew; at most once a
`CHECKPOINT_SECONDS` it runs a PASSIVE checkpoint, which waits for no reader or writer
and runs in SQLite with the interpreter lock released. The automatic checkpoint stays
as a safety net, at `SAFETY_NET_PAGES`, for a log that outgrows what the thread keeps up
with.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import Engine, event

from .background import BackgroundWriter

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 0.2
SAFETY_NET_PAGES = 10_000  # about 40 MB of log at SQLite's default 4 KiB pages
# A log that grew towards the net in a burst is cut back to this when it restarts:
# SQLite otherwise keeps the file at its largest size for good.
LOG_SIZE_LIMIT_BYTES = 16 * 1024 * 1024
WRITER_NAME = "shopai-sqlite-checkpoints"


class Checkpointer(BackgroundWriter[None]):
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` after commits, once per batch of them."""

    thread_name = WRITER_NAME

    def __init__(self, engine: Engine) -> None:
        # One checkpoint covers every commit before it, however many: take them all.
        super().__init__(engine, batch_size=1_000_000, linger_seconds=CHECKPOINT_SECONDS)
        self.checkpoints = 0

    def committed(self, _connection: Any) -> None:
        """The engine's commit event: the log grew."""
        self(None)

    def write(self, batch: list[None]) -> None:
        database = self.engine.url.database
        if database and not os.path.exists(database):
            # Removed since (a test's or a benchmark's throwaway shop, at exit): there is
            # nothing to copy, and connecting would create an empty database file.
            return
        with self.engine.connect() as connection:
            busy, pages, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        self.checkpoints += 1
        if busy:  # another process was checkpointing: it does the same work
            log.debug("checkpoint skipped: another one was running")
        elif copied < pages:  # readers still use older pages: the next one continues
            log.debug("checkpoint copied %d of %d pages", copied, pages)


_ATTRIBUTE = "shopai_checkpointer"


def install(engine: Engine) -> Checkpointer | None:
    """Checkpoint `engine`'s database file off the committing threads (once per engine;
    its checkpointer is returned again); None for an in-memory database (no log).

    The checkpointer hangs on the engine, which it refers to: a cycle the collector
    frees with the engine, so apps built and dropped by the hundred (tests) leave no
    engines, pools or open files behind. The commit event fires just before the
    commit itself; the checkpoint waits CHECKPOINT_SECONDS, so it finds it done."""
    if engine.url.database in (None, "", ":memory:"):
        return None
    installed: Checkpointer | None = getattr(engine, _ATTRIBUTE, None)
    if installed is not None:
        return installed
    checkpointer = Checkpointer(engine)
    setattr(engine, _ATTRIBUTE, checkpointer)
    event.listen(engine, "commit", checkpointer.committed)
    return checkpointer
