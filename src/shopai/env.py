"""Reading settings from environment variables: one parser for the app and the AI client.

Both used to parse on their own and disagreed (`SHOPAI_HTTPS=on` worked while
`SHOPAI_ALLOW_PRIVATE_IMAGE_URLS=on` was an error). Everything that reads a
variable goes through `EnvReader`, so a value means the same everywhere. This
module needs only the standard library: `shopai.ai` uses it without Flask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """A variable is malformed; the message names it (and never echoes a secret)."""


@dataclass(frozen=True)
class EnvReader:
    environ: Mapping[str, str]

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise SettingError(f"{name} must be a finite number, got {raw!r}")
        if value < minimum:
            raise SettingError(f"{name} must be at least {minimum:g}, got {raw}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingError(f"{name} must be an integer (a whole number), got {raw!r}") from None
        if value < minimum:
            raise SettingError(f"{name} must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise SettingError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower() or default
        if value not in allowed:
            raise SettingError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def words(self, name: str, default: tuple[str, ...] = ()) -> list[str]:
        """A comma- or space-separated list."""
        raw = self.text(name)
        if not raw:
            return list(default)
        return [word for word in raw.replace(",", " ").split() if word]
