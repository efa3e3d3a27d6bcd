"""Find the header row of an agency table and map its columns to a source's canonical fields."""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _field_for(cell: str | None, table: dict[str, str]) -> str | None:
    key = header_key(cell)
    if not key:
        return None
    if key in table:
        return table[key]
    for deco in _DECORATIONS:
        if key.endswith(deco) and key[: -len(deco)] in table:
            return table[key[: -len(deco)]]
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


def find_header(rows: list[tuple[int, list[str | None]]], spec: SourceSpec, overrides: dict[str, str]) -> HeaderMapping | None:
    """The row among the first few non-empty ones that names the most fields (title rows above are skipped)."""
    best: HeaderMapping | None = None
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
        if len(candidate.columns) >= 2 and (best is None or score > (len(best.columns), 0)):
            best = candidate
    return best
