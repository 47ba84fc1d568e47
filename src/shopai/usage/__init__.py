"""The usage ledger: one row per model call, for spend charts and budgets."""

from .views import bp

__all__ = ["bp"]
