"""Keeping a served process's start-up objects out of the garbage collector's full passes.

A full pass walks every tracked object: with the app loaded, some 200,000 of them,
40-200 ms during which no thread of the process runs, so a request that meets one
waits that long (the p99 of a product create was such pauses). Frozen objects are
still freed by reference counting, only never by the cycle collector: fine for what
lives as long as the process (modules, the app, its caches). Done once per app, on
its first request (that one pays for a last full pass): a served process has one app,
whatever the server (gunicorn, waitress, `shopai run`). Never in tests, which build
apps and drop them.
"""

from __future__ import annotations

import gc
import threading

from flask import Flask, current_app

FROZEN_KEY = "shopai.gc_frozen"
_lock = threading.Lock()


def init_gc_freeze(app: Flask) -> None:
    if not app.testing:
        app.before_request(_freeze_once)


def _freeze_once() -> None:
    """before_request. The key is set before the work, under a lock: of the first
    requests arriving together, one collects and freezes, the others go on."""
    extensions = current_app.extensions
    if FROZEN_KEY in extensions:
        return
    with _lock:
        if FROZEN_KEY in extensions:
            return
        extensions[FROZEN_KEY] = True
    gc.collect()
    gc.freeze()
