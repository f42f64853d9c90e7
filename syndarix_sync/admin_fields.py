"""Form fields the admin shows instead of raw JSON and raw seconds."""

from __future__ import annotations

import re
from typing import Any

from django import forms


class NameListField(forms.CharField):
    """A list of names (labels, assignees, milestones) as one comma-separated line."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            parts = [str(v) for v in value]
        else:
            parts = str(super().to_python(value) or "").split(",")
        return sorted({part.strip() for part in parts if part.strip()})


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
UNIT_NAMES = {"d": "day", "h": "hour", "m": "minute", "s": "second"}
_INTERVAL = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$", re.IGNORECASE)


def interval_text(seconds: int) -> str:
    """300 → "5m", 86400 → "1d": the largest unit that divides it."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def interval_words(seconds: int) -> str:
    text = interval_text(seconds)
    count, unit = int(text[:-1]), text[-1]
    return f"{count} {UNIT_NAMES[unit]}{'' if count == 1 else 's'}"


class IntervalField(forms.CharField):
    """Seconds in the model, "30s", "5m", "2h" or "1d" in the form (a bare number is seconds)."""

    def __init__(self, *, minimum: int = 1, **kwargs: Any) -> None:
        self.minimum = minimum
        kwargs.setdefault("help_text", "")
        kwargs["help_text"] = (
            f"{kwargs['help_text']} A number with a unit: 30s, 5m, 2h, 1d.".strip()
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int):
            return interval_text(value)
        return value

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        if isinstance(value, int):
            return value
        text = str(super().to_python(value) or "")
        if not text:
            return None
        match = _INTERVAL.match(text)
        if not match:
            raise forms.ValidationError("Write a number with a unit: 30s, 5m, 2h or 1d.")
        seconds = int(match.group(1)) * UNITS[(match.group(2) or "s").lower()]
        if seconds < self.minimum:
            raise forms.ValidationError(f"At least {interval_words(self.minimum)}.")
        return seconds
