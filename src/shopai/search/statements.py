"""Search statements built once per shape and run with bind parameters.

Building a search statement and keying it for SQLAlchemy's statement cache cost a
search as much as the database's own work; an assistant's question runs up to six
of them before the model can write a word. A statement whose structure depends only
on its shape (the database kind, which filters are set, ...) is therefore built the
first time that shape is seen, and every search of that shape passes its values as
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ..extensions import db

T = TypeVar("T")

_BUILT: dict[tuple[Any, ...], Any] = {}


def built(key: tuple[Hashable, ...], build: Callable[[], T]) -> T:
    """The statement for `key` in this database, built by `build` on first use. Two
    threads may both build it; one of the two is kept (they are the same)."""
    shape = (db.engine.dialect.name, *key)
    statement = _BUILT.get(shape)
    if statement is None:
        statement = _BUILT.setdefault(shape, build())
    return statement
