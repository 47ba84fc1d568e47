"""Writing usage events from the AI client into the ledger."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..ai.types import UsageEvent
from .models import UsageRecord

log = logging.getLogger(__name__)

BATCH_SIZE = 100
IDLE_SECONDS = 1.0
EXIT_FLUSH_SECONDS = 5.0
WRITER_NAME = "shopai-usage-writer"


def record_from_event(event: UsageEvent) -> UsageRecord:
    return UsageRecord(
        feature=event.feature,
        backend=event.backend,
        model=event.model[:128],
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        images=event.images,
        latency_ms=round(event.latency_ms),
        cost_micro_usd=None if event.estimated_cost is None else round(event.estimated_cost * 1e6),
        who=event.who[:64] if event.who else None,
        ok=event.ok,
        error=event.error,
    )


@dataclass(frozen=True)
class _Flush:
    """A marker in the queue: once the writer reaches it, everything before it is written."""

    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Writer:
    """One process's queue and writer thread. A forked child gets a fresh one: threads do
    not survive a fork, and the parent's writer already owns the events queued before it."""

    pid: int
    queue: queue.SimpleQueue[UsageEvent | _Flush] = field(default_factory=queue.SimpleQueue)
    # Reentrant: a finalizer may record usage on a thread that is already inside the lock.
    lock: threading.RLock = field(default_factory=threading.RLock)
    running: bool = False
    # Held while writing. A fork waits for it, so the child never inherits a database or
    # SQLAlchemy lock that the writer held at that moment (the child would hang on it).
    writing: threading.Lock = field(default_factory=threading.Lock)


class UsageLedger:
    """A usage sink that only hands events over; a writer thread of its own stores them.

    The AI client records usage from wherever a call ends, including a stream's
    garbage-collection finalizer, which can run on any thread, in the middle of that
    thread's own database session, or at interpreter exit. So `__call__` does nothing but
    put the event on a `queue.SimpleQueue` (safe to call from finalizers and `__del__`)
    and make sure a writer is running. The writer commits batches in its own session, so
    recording never commits or rolls back a caller's unit of work. It exits after
    `idle_seconds` without events and is started again by the next one, so apps built
    and dropped by the hundred (tests) leave no threads behind."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = BATCH_SIZE,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self._writer = _Writer(os.getpid())
        _LEDGERS.add(self)

    def __call__(self, event: UsageEvent) -> None:
        writer = self._current_writer()
        writer.queue.put(event)
        self._ensure_running(writer)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event handed over so far is written (or, if its write failed,
        logged). For tests, CLI commands and shutdown; False if `timeout` ran out first."""
        writer = self._current_writer()
        with writer.lock:
            if not writer.running and writer.queue.empty():
                return True
        marker = _Flush()
        writer.queue.put(marker)
        if not self._ensure_running(writer):  # no new threads at interpreter shutdown
            self._drain(writer)
        return marker.done.wait(timeout)

    # -- the writer ------------------------------------------------------------------------

    def _current_writer(self) -> _Writer:
        writer = self._writer
        if writer.pid != os.getpid():
            writer = self._writer = _Writer(os.getpid())
        return writer

    def _ensure_running(self, writer: _Writer) -> bool:
        """Start the writer unless it runs; False if no thread could be started."""
        with writer.lock:
            if writer.running:
                return True
            writer.running = True  # before starting, so a reentrant call starts no second one
            try:
                threading.Thread(
                    target=self._run, args=(writer,), name=WRITER_NAME, daemon=True
                ).start()
            except RuntimeError:
                writer.running = False
                return False
        return True

    def _run(self, writer: _Writer) -> None:
        while True:
            batch = self._next_batch(writer, self.idle_seconds)
            if batch:
                with writer.writing:
                    self._handle(batch)
                continue
            with writer.lock:
                if writer.queue.empty():
                    writer.running = False
                    break
        # An event handed over by a finalizer that ran on this thread during the check
        # above found the writer still "running"; don't leave it waiting for the next one.
        if not writer.queue.empty():
            self._ensure_running(writer)

    def _drain(self, writer: _Writer) -> None:
        """Write what is queued on this thread: only when no writer thread can start."""
        while batch := self._next_batch(writer, 0):
            with writer.writing:
                self._handle(batch)

    def _next_batch(self, writer: _Writer, wait: float) -> list[UsageEvent | _Flush]:
        try:
            batch = [writer.queue.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(writer.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[UsageEvent | _Flush]) -> None:
        events = [item for item in batch if isinstance(item, UsageEvent)]
        try:
            self._write(events)
        except Exception:
            # Retry one by one so that one bad event costs only its own row.
            for event in events:
                self._write_one(event)
        for item in batch:
            if isinstance(item, _Flush):
                item.done.set()

    def _write(self, events: list[UsageEvent]) -> None:
        if events:
            with Session(self.engine) as session:
                session.add_all(record_from_event(event) for event in events)
                session.commit()

    def _write_one(self, event: UsageEvent) -> None:
        try:
            self._write([event])
        except Exception:
            # Losing one ledger row must not break the feature, nor stop the writer.
            log.exception("could not record AI usage for %s", event.feature)


_LEDGERS: weakref.WeakSet[UsageLedger] = weakref.WeakSet()
_HELD_FOR_FORK: list[threading.Lock] = []


def _before_fork() -> None:
    # This process's writers, never one inherited from a parent process: that one's lock
    # was taken for the parent's fork, and nothing in this process would ever release it.
    for ledger in list(_LEDGERS):
        lock = ledger._current_writer().writing
        lock.acquire()
        _HELD_FOR_FORK.append(lock)


def _after_fork_in_parent() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def _after_fork_in_child() -> None:
    """Give every ledger a new writer (the inherited locks are held, see `_before_fork`)
    and its engine a new pool: the pooled connections are the parent's, still in use there.
    `close=False` drops them without closing them, which would disturb the parent's."""
    _HELD_FOR_FORK.clear()
    engines: dict[int, Engine] = {}
    for ledger in list(_LEDGERS):
        ledger._writer = _Writer(os.getpid())
        engines.setdefault(id(ledger.engine), ledger.engine)
    for engine in engines.values():
        engine.dispose(close=False)  # the child is single-threaded here: nothing uses it yet


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


@atexit.register
def _flush_at_exit() -> None:
    """Give queued usage a bounded chance to reach the database before the process ends."""
    deadline = time.monotonic() + EXIT_FLUSH_SECONDS
    for ledger in list(_LEDGERS):
        if not ledger.flush(max(0.0, deadline - time.monotonic())):
            log.warning("AI usage still unwritten at exit; some ledger rows are lost")
