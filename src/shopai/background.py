"""Writing rows off the caller's thread: hand an item over now, a writer thread stores it.

Two kinds of rows are not worth making anyone wait for, and must never disturb the
caller's own unit of work: the AI usage ledger (`usage.services`), recorded from
wherever a model call ends, garbage-collection finalizers included, and the submitted
searches counted for suggestions (`suggest.recording`), which cost the search page a
commit per request when written in it. `BackgroundWriter` is the one implementation
both use: a `queue.SimpleQueue` (safe from finalizers and `__del__`) drained in
batches by a thread of its own, which exits when idle (apps built and dropped by the
hundred, as in tests, leave no threads behind), is replaced in a forked child, and is
given a bounded chance to finish at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

log = logging.getLogger(__name__)

BATCH_SIZE = 100
IDLE_SECONDS = 1.0
EXIT_FLUSH_SECONDS = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class _Flush:
    """A marker in the queue: once the writer reaches it, everything before it is written."""

    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Writer(Generic[T]):
    """One process's queue and writer thread. A forked child gets a fresh one: threads do
    not survive a fork, and the parent's writer already owns the items queued before it."""

    pid: int
    queue: queue.SimpleQueue[T | _Flush] = field(default_factory=queue.SimpleQueue)
    # Reentrant: a finalizer may hand an item over on a thread already inside the lock.
    lock: threading.RLock = field(default_factory=threading.RLock)
    running: bool = False
    # Held while writing. A fork waits for it, so the child never inherits a database or
    # SQLAlchemy lock that the writer held at that moment (the child would hang on it).
    writing: threading.Lock = field(default_factory=threading.Lock)
    # Set by `flush`: a lingering writer stops waiting for more items.
    hurry: threading.Event = field(default_factory=threading.Event)


class BackgroundWriter(Generic[T]):
    """Items handed over with `writer(item)` are stored by `write` on a thread of its own.

    `__call__` only queues the item and makes sure a writer thread runs; it never
    touches the database. Subclasses implement `write(batch)` against `engine` (in a
    session of their own: the writer must never commit or roll back a caller's work).
    A batch whose `write` raises is logged and dropped; the writer carries on.

    With `linger_seconds`, the writer waits that long after an item arrives for more
    to join its batch (a `flush` cuts the wait short): fewer, larger writes, and less
    time on the interpreter lock taken from the threads serving requests."""

    thread_name = "shopai-writer"

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = BATCH_SIZE,
        idle_seconds: float = IDLE_SECONDS,
        linger_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self._writer: _Writer[T] = _Writer(os.getpid())
        _WRITERS.add(self)

    def write(self, batch: list[T]) -> None:
        """Store `batch` (in the order handed over). Runs on the writer thread."""
        raise NotImplementedError

    def __call__(self, item: T) -> None:
        writer = self._current_writer()
        writer.queue.put(item)
        self._ensure_running(writer)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every item handed over so far is written (or, if its write failed,
        logged). For tests, CLI commands and shutdown; False if `timeout` ran out first."""
        writer = self._current_writer()
        with writer.lock:
            if not writer.running and writer.queue.empty():
                return True
        marker = _Flush()
        writer.queue.put(marker)
        writer.hurry.set()  # after the marker: a writer that sees it set will find it
        if not self._ensure_running(writer):  # no new threads at interpreter shutdown
            self._drain(writer)
        return marker.done.wait(timeout)

    # -- the writer ------------------------------------------------------------------------

    def _current_writer(self) -> _Writer[T]:
        writer = self._writer
        if writer.pid != os.getpid():
            writer = self._writer = _Writer(os.getpid())
        return writer

    def _ensure_running(self, writer: _Writer[T]) -> bool:
        """Start the writer unless it runs; False if no thread could be started."""
        with writer.lock:
            if writer.running:
                return True
            writer.running = True  # before starting, so a reentrant call starts no second one
            try:
                threading.Thread(
                    target=self._run, args=(writer,), name=self.thread_name, daemon=True
                ).start()
            except RuntimeError:
                writer.running = False
                return False
        return True

    def _run(self, writer: _Writer[T]) -> None:
        while True:
            batch = self._next_batch(writer, self.idle_seconds, self.linger_seconds)
            if batch:
                with writer.writing:
                    self._handle(batch)
                continue
            with writer.lock:
                if writer.queue.empty():
                    writer.running = False
                    break
        # An item handed over by a finalizer that ran on this thread during the check
        # above found the writer still "running"; don't leave it waiting for the next one.
        if not writer.queue.empty():
            self._ensure_running(writer)

    def _drain(self, writer: _Writer[T]) -> None:
        """Write what is queued on this thread: only when no writer thread can start."""
        while batch := self._next_batch(writer, 0):
            with writer.writing:
                self._handle(batch)

    def _next_batch(self, writer: _Writer[T], wait: float, linger: float = 0.0) -> list[T | _Flush]:
        """The next items, waiting up to `wait` for the first, then up to `linger` for
        more to queue up (asleep meanwhile: handing an item over wakes no one)."""
        try:
            batch = [writer.queue.get(timeout=wait)]
        except queue.Empty:
            return []
        if linger and not isinstance(batch[0], _Flush):
            writer.hurry.wait(linger)
        writer.hurry.clear()  # before taking the items: a flush set after this is seen next
        while len(batch) < self.batch_size:
            try:
                batch.append(writer.queue.get_nowait())
            except queue.Empty:
                break
        else:  # full: a flush's marker may still wait behind it, don't linger for it
            writer.hurry.set()
        return batch

    def _handle(self, batch: list[T | _Flush]) -> None:
        items = [item for item in batch if not isinstance(item, _Flush)]
        try:
            if items:
                self.write(items)
        except Exception:
            # Whatever went wrong, the writer must not stop: later items still count.
            log.exception("%s could not write %d item(s)", self.thread_name, len(items))
        for item in batch:
            if isinstance(item, _Flush):
                item.done.set()


_WRITERS: weakref.WeakSet[BackgroundWriter[Any]] = weakref.WeakSet()
_HELD_FOR_FORK: list[threading.Lock] = []


def _before_fork() -> None:
    # This process's writers, never one inherited from a parent process: that one's lock
    # was taken for the parent's fork, and nothing in this process would ever release it.
    for writer in list(_WRITERS):
        lock = writer._current_writer().writing
        lock.acquire()
        _HELD_FOR_FORK.append(lock)


def _after_fork_in_parent() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def _after_fork_in_child() -> None:
    """Give every writer a new thread state (the inherited locks are held, see
    `_before_fork`) and its engine a new pool: the pooled connections are the parent's,
    still in use there. `close=False` drops them without closing them, which would
    disturb the parent's."""
    _HELD_FOR_FORK.clear()
    engines: dict[int, Engine] = {}
    for writer in list(_WRITERS):
        writer._writer = _Writer(os.getpid())
        engines.setdefault(id(writer.engine), writer.engine)
    for engine in engines.values():
        engine.dispose(close=False)  # the child is single-threaded here: nothing uses it yet


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def flush_all(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Wait until every writer of this process wrote what it was handed so far: at exit,
    and in tests, so that one test's rows never land during the next. False if
    `timeout` (for them all) ran out first."""
    deadline = time.monotonic() + timeout
    done = True
    for writer in list(_WRITERS):
        if not writer.flush(max(0.0, deadline - time.monotonic())):
            log.warning("%s: items still unwritten", writer.thread_name)
            done = False
    return done


@atexit.register
def _flush_at_exit() -> None:
    """Give queued items a bounded chance to reach the database before the process ends."""
    flush_all()
