"""Compared pairs kept from one night to the next, so an incremental night compares only what is new.

A record's `record_key` (source | MD5 of the row's cells | occurrence | role) names the content
of the row it was read from, whichever file or row number that row is in tonight, and its
normalised values depend on that content and on the code alone (a subsistence household key that
depends on the file is part of the hash); so the comparison of two records with the same keys,
made by the same code, is the same tonight as last night. The cache
holds every compared candidate pair by its two keys (table `compared_pairs`, rebuilt each run);
tonight's candidate pairs whose two keys are both there are taken from it, the rest — pairs with a
record whose row is new or changed — are compared. The model, the link rules and the clusters are
then worked out on all pairs as in a full run, so the links are exactly those a full run makes.

A change of code (comparison, normalisation, blocking) changes the fingerprint and empties the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from matchers.linking import Compare
from pipeline import reuse
from pipeline.store import query_frame, replace_table

__all__ = ["CachedCompare"]

_STAGE = "compared_pairs"


@dataclass
class CachedCompare:
    """A compare function for resolve_people backed by last night's compared pairs."""

    con: duckdb.DuckDBPyConnection
    records: pl.DataFrame
    inner: Compare
    run_id: str
    reused: int = 0
    compared: int = 0
    _result: pl.DataFrame | None = field(default=None, repr=False)

    def _previous(self) -> pl.DataFrame | None:
        state = self.con.execute("SELECT inputs_key FROM stage_state WHERE stage = ?", [_STAGE]).fetchall()
        exists = self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                                  "AND table_name = 'compared_pairs'").fetchall()[0][0]
        if not state or not exists or state[0][0] != reuse.code_fingerprint():
            return None
        return query_frame(self.con, "SELECT * FROM compared_pairs")

    def _keys_of(self, record_ids: pl.Series) -> pl.Series:
        """The record_key of each record id (a lookup by position in the records sorted by record_id)."""
        if not self.records["record_id"].is_sorted():
            self.records = self.records.sort("record_id")
        ids = self.records["record_id"].cast(pl.Int64).to_numpy()
        at = np.searchsorted(ids, record_ids.cast(pl.Int64).to_numpy())
        return self.records["record_key"].gather(at)

    def __call__(self, prepared: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
        keyed = pairs.select("record_id_l", "record_id_r").with_row_index("_order").with_columns(
            self._keys_of(pairs["record_id_l"]).alias("key_l"), self._keys_of(pairs["record_id_r"]).alias("key_r"))
        previous = self._previous()
        if previous is None or previous.height == 0:
            fresh = self.inner(prepared, pairs.select("record_id_l", "record_id_r"))
            self.compared = fresh.height
            out = fresh
        else:
            old = previous.drop("record_id_l", "record_id_r")
            hit = keyed.join(old, on=["key_l", "key_r"], how="inner")
            miss = keyed.join(old.select("key_l", "key_r"), on=["key_l", "key_r"], how="anti")
            fresh = self.inner(prepared, miss.select("record_id_l", "record_id_r"))
            self.reused, self.compared = hit.height, fresh.height
            columns = fresh.columns
            out = (pl.concat([hit.select("_order", *columns),
                              fresh.with_columns(miss["_order"]).select("_order", *columns)], how="vertical_relaxed")
                   .sort("_order").drop("_order"))
        self._result = out.with_columns(keyed["key_l"], keyed["key_r"]) if out.height == keyed.height else None
        return out

    def store(self) -> None:
        """Keep tonight's compared pairs for the next night (only when every pair carries its keys)."""
        if self._result is None:
            return
        replace_table(self.con, "compared_pairs", self._result, uncompressed=("key_l", "key_r"),
                      table_comment="比对结果缓存: every compared candidate pair by its two record keys, reused by "
                                    "the next night for pairs of unchanged records (holds compared values)",
                      column_comments={"key_l": "左记录稳定键 (record_key)", "key_r": "右记录稳定键 (record_key)"})
        reuse.remember(self.con, _STAGE, reuse.code_fingerprint(), self.run_id)
