"""Cron lines and timezones for `[schedule]`, checked without importing Prefect (loading a config stays fast).

Five fields (minute hour day-of-month month day-of-week) with numbers, `*`, ranges `a-b`, steps `/n`,
lists `a,b` and English month / weekday names, or one of the `@daily`-style aliases. Prefect's own
validation runs again when `aidleads serve` builds the schedule.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo

__all__ = ["cron_problem", "timezone_problem"]

_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_PART = re.compile(r"^(?P<base>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


def cron_problem(line: str) -> str | None:
    """Why `line` is not a usable cron line, or None when it is."""
    text = line.strip()
    if text.startswith("@"):
        return None if text.lower() in _ALIASES else f"unknown alias '{text}' (use one of {', '.join(_ALIASES)})"
    fields = text.split()
    if len(fields) != 5:
        return (f"'{line}' has {len(fields)} field(s); a cron line has 5: minute hour day-of-month month "
                "day-of-week, e.g. '0 2 * * *' for 02:00 every day")
    for value, (name, low, high, names) in zip(fields, _FIELDS):
        for part in value.split(","):
            problem = _part_problem(part, low, high, names)
            if problem:
                return f"{name} field '{value}' of '{line}': {problem}"
    return None


def _part_problem(part: str, low: int, high: int, names: dict[str, int]) -> str | None:
    match = _PART.match(part.lower())
    if not match:
        return f"'{part}' is not a number, a range a-b, '*' or a step '/n'"
    if match["step"] is not None and int(match["step"]) == 0:
        return "a step must be at least 1"
    if match["base"] == "*":
        return None
    ends = match["base"].split("-")
    values = []
    for end in ends:
        number = names.get(end) if end.isalpha() else (int(end) if end.isdigit() else None)
        if number is None:
            return f"'{part}' is not a number" + (f" or a name ({', '.join(names)})" if names else "")
        if not low <= number <= high:
            return f"{number} is outside {low}–{high}"
        values.append(number)
    if len(values) == 2 and values[0] > values[1]:
        return f"the range {part} runs backwards"
    return None


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA timezone Prefect accepts, or None when it is."""
    zones = zoneinfo.available_timezones()
    if name in zones:
        return None
    close = difflib.get_close_matches(name, sorted(zones), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else " (an IANA name such as 'Asia/Shanghai')"
    return f"unknown timezone '{name}'{hint}"
