"""Find the header row of an agency table and map its columns to a source's canonical fields."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from schemas.sources import SourceSpec, header_key

__all__ = ["HeaderMapping", "map_header", "find_header"]

_SCAN_ROWS = 20
_DECORATIONS = ("必填", "选填", "必录", "可选")


@dataclass
class HeaderMapping:
    """Which column holds which canonical field, and what was left over."""

    header_row: int
    header: list[str | None]
    columns: dict[str, int]
    """canonical field → column index"""
    unmapped: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def missing_required(self, spec: SourceSpec) -> list[str]:
        missing = [f.label_zh for f in spec.fields if f.required and f.name not in self.columns]
        for group in spec.one_of:
            if not any(name in self.columns for name in group):
                missing.append(" 或 ".join(spec.field(n).label_zh for n in group))
        return missing

    def as_labels(self) -> dict[str, str]:
        """canonical field → the header text it was read from (for the data-quality report)."""
        return {name: str(self.header[idx]) for name, idx in self.columns.items()}


def _lookup(spec: SourceSpec, overrides: dict[str, str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for f in spec.fields:
        table.setdefault(header_key(f.name), f.name)
        for syn in (f.label_zh, *f.synonyms):
            table.setdefault(header_key(syn), f.name)
    for header, target in overrides.items():
        table[header_key(header)] = target  # the config wins over built-in synonyms
    return table


@lru_cache(maxsize=4096)
def _simplified(key: str) -> str:
    """A header in traditional characters (身份證號碼, from a Big5 file) in simplified ones."""
    return _t2s().convert(key) if any(ord(ch) > 0x2E80 for ch in key) else key


@lru_cache(maxsize=1)
def _t2s():  # noqa: ANN202 — opencc has no type hints
    import opencc

    return opencc.OpenCC("t2s")


def _field_for(cell: str | None, table: dict[str, str]) -> str | None:
    key = header_key(cell)
    if not key or len(key) > 100:  # a header is a few words; a long cell is a title or data
        return None
    for candidate in dict.fromkeys((key, _simplified(key))):
        if candidate in table:
            return table[candidate]
        for deco in _DECORATIONS:
            if candidate.endswith(deco) and candidate[: -len(deco)] in table:
                return table[candidate[: -len(deco)]]
    return None


def map_header(header: list[str | None], spec: SourceSpec, overrides: dict[str, str], header_row: int = 1) -> HeaderMapping:
    """Map one header row; the first column naming a field wins, later ones are reported."""
    table = _lookup(spec, overrides)
    mapping = HeaderMapping(header_row=header_row, header=list(header), columns={})
    for idx, cell in enumerate(header):
        target = _field_for(cell, table)
        if target is None:
            if cell:
                mapping.unmapped.append(str(cell))
        elif target in mapping.columns:
            mapping.duplicates.append(str(cell))
        else:
            mapping.columns[target] = idx
    return mapping


def find_header(rows: Iterable[tuple[int, list[str | None]]], spec: SourceSpec, overrides: dict[str, str]) -> HeaderMapping | None:
    """The row among the first few non-empty ones that names the most fields (title rows above are skipped).

    `rows` is read only as far as needed: a table's `iter_rows()` makes just those rows.

    On a tie the first such row wins: a header repeated further down (two exports pasted together)
    must not make the rows between the two copies look like title rows.
    """
    best: HeaderMapping | None = None
    best_score = (0, 0)
    seen = 0
    for number, cells in rows:
        if not any(c is not None for c in cells):
            continue
        seen += 1
        if seen > _SCAN_ROWS:
            break
        candidate = map_header(cells, spec, overrides, header_row=number)
        required_hits = sum(1 for f in spec.fields if f.required and f.name in candidate.columns)
        score = (len(candidate.columns), required_hits)
        if len(candidate.columns) >= 2 and score > best_score:
            best, best_score = candidate, score
    return best
