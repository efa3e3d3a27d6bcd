"""The aidleads exception tree. Every error a data officer may see is one of these, with a fix."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AidLeadsError",
    "ConfigError",
    "SourceFormatError",
    "MissingColumnError",
    "DatabaseError",
    "RunLockedError",
]


class AidLeadsError(Exception):
    """Root of all aidleads errors; `str()` is one line a data officer can act on."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} — {self.hint}" if self.hint else base


class ConfigError(AidLeadsError):
    """The configuration file is missing, unreadable or has an invalid key."""


class SourceFormatError(AidLeadsError):
    """An input file cannot be read as a table (encoding, format, no header)."""

    def __init__(self, path: Path | str, problem: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}", hint=hint)


class MissingColumnError(SourceFormatError):
    """An input file lacks a required column; the file is rejected, other files still load."""

    def __init__(self, path: Path | str, source: str, columns: list[str], header: list[str]) -> None:
        self.source = source
        self.columns = columns
        shown = "、".join(columns)
        super().__init__(
            path,
            f"missing required column(s) for source '{source}': {shown}",
            hint=f"add a header synonym under [sources.{source}.columns] in the config "
            f"(found headers: {', '.join(h for h in header if h)[:300]})",
        )


class DatabaseError(AidLeadsError):
    """The DuckDB database cannot be opened or written."""


class RunLockedError(AidLeadsError):
    """Another run holds the lock on this work folder."""
