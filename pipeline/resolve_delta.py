"""An incremental night's resolution: the records normalise added or removed are resolved against the
stored state, and only the people they touch are rebuilt.

A full resolution (pipeline.run.resolve_stage) stores, beside its links and persons, what a later
night needs to resolve a change without redoing the whole area (`store_link_state`):

| table | holds |
|---|---|
| link_model, link_model_tf | the estimated m, u and prior, and the term frequencies of names, birth dates, phones, addresses and other parties (the values more than two people hold; the rest share the field's smallest) |
| block_keys | per record, its blocking keys (32-bit folds of the hashes) and whether it is a suspect of each ID-typo rule |
| links_cut | links the rules made and the cluster guard cut |
| cannot_link_pairs | pairs the rules keep apart (one household roll, one case file) |

With them, a night whose normalise added and removed a few records (table record_changes):
1. block: the new records' keys select the stored records that share a block with one of them and could
   pair with it (in an ID-typo rule's block, where a pair needs a suspect ID, only the suspects, unless the
   block is too large to expand); the candidate pairs touching a new record come from those records alone,
   exactly as a full run finds them;
2. compare: those pairs are compared and decided by the stored model (frequencies included);
3. cluster: the pairs decided on earlier nights stand; the people whose records were removed or are
   joined by a new link (every record connected to them through any decided link, cut or kept, or a
   case-context link) are clustered again with the guard, and only their rows of links, members,
   persons and evidence are rewritten. Everyone else keeps their person as it was.

What differs from a full run on the same files: the model is the one estimated by the last full run,
and pairs of unchanged records are not re-decided. The weights move little when a few records change,
but a pair near the threshold could come out differently — so a full resolution runs again after
`linking.full_resolve_every` incremental nights, and whenever a night changes more than
`linking.incremental_max_change` of the records, the code or the link settings change, or the state
is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from matchers.blocking import BLOCKING_RULES, candidate_pairs, folded_keys, hashed_keys, suspect_column
from matchers.case_context import case_context_links, merge_links_into_clusters
from matchers.clustering import cluster_records, component_labels, inherit_person_ids
from matchers.comparison import prepare_records
from matchers.households import household_relations
from matchers.linking import LINK_COLUMNS, Compare, LinkSettings, Meter, Resolution, decide_pairs
from matchers.weights import FSModel
from pipeline.persons import LINK_COMMENTS, household_table, persons_frame, record_evidence, with_id_hmac
from pipeline.store import query_frame, registered, replace_table, transaction

__all__ = ["store_link_state", "has_link_state", "resolve_changes", "DeltaOutcome", "LINK_STATE_TABLES"]

LINK_STATE_TABLES = ("link_model", "link_model_tf", "block_keys", "links_cut", "cannot_link_pairs")
_CONTEXT_SOURCES = ("victims", "enforcement")
"""Sources whose records case-context links are made from (a change elsewhere keeps them as they are)."""
_PAIR_COMMENTS = {"record_id_l": "左记录号 (the smaller)", "record_id_r": "右记录号"}


def store_link_state(con: duckdb.DuckDBPyConnection, resolution: Resolution) -> None:
    """Keep what an incremental night needs (see the module docstring) after a full resolution."""
    model = resolution.model
    # a value held by one or two people has the field's smallest frequency: only the others are stored (a fifth
    # of the values at a province), and the smallest is kept per field for the rest and for new values
    floors = {name: float(frame["tf"].min()) for name, frame in (model.tf if model else {}).items() if frame.height}
    params = {"m": model.m, "u": model.u, "prior": model.prior, "n_people": model.n_people,
              "tf_floor": floors} if model else None
    replace_table(con, "link_model", pl.DataFrame({"model_json": [json.dumps(params)]}),
                  table_comment="比对模型: m, u and prior of the last full resolution (JSON; counts-free)",
                  column_comments={"model_json": "模型参数 (JSON)"})
    tf = pl.concat([frame.filter(pl.col("tf") > floors[name])
                    .select(pl.lit(name).alias("field"), pl.col("value").cast(pl.String), "tf")
                    for name, frame in (model.tf if model else {}).items() if frame.height] or
                   [pl.DataFrame(schema={"field": pl.String, "value": pl.String, "tf": pl.Float64})])
    replace_table(con, "link_model_tf", tf,
                  table_comment="取值频率: share of people holding each name / birth date / phone / address / other "
                                "party at the last full resolution (holds personal values, like person_records)",
                  column_comments={"field": "字段", "value": "取值", "tf": "频率"})
    replace_table(con, "block_keys", resolution.block_keys,
                  table_comment="分块键: per record, each blocking rule's key hash folded to 32 bits (null: no key), and "
                                "suspect_<rule>: whether its ID may hold a keying slip there (ID-typo rules)",
                  column_comments={"record_id": "记录号"})
    replace_table(con, "links_cut", resolution.cut_links.select(LINK_COLUMNS) if resolution.cut_links.height
                  else resolution.links.clear(), table_comment="被拆分的关联: links the rules made that the cluster "
                  "guard cut (two different valid IDs, or a pair kept apart, in one person)",
                  column_comments=LINK_COMMENTS)
    replace_table(con, "cannot_link_pairs", resolution.cannot_link,
                  table_comment="不得关联的记录对: two rows of one household roll or one case file that are two people",
                  column_comments=_PAIR_COMMENTS)


def has_link_state(con: duckdb.DuckDBPyConnection) -> bool:
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    keyed = con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = "
                        "'person_members' AND column_name = 'record_key'").fetchall()[0][0]
    return bool(keyed) and all(t in have for t in (*LINK_STATE_TABLES, "links", "person_members", "persons",
                                                   "record_changes"))


def _load_model(con: duckdb.DuckDBPyConnection) -> FSModel | None:
    params = con.execute("SELECT model_json FROM link_model").fetchall()
    if not params or params[0][0] in (None, "null"):
        return None
    p = json.loads(params[0][0])
    tf_rows = query_frame(con, "SELECT field, value, tf FROM link_model_tf")
    tf = {name: part.select("value", "tf") for (name,), part in tf_rows.partition_by("field", as_dict=True).items()}
    return FSModel(m=p["m"], u=p["u"], prior=p["prior"], tf=tf, n_people=p["n_people"], tf_floor=p["tf_floor"])


@dataclass
class DeltaOutcome:
    stats: dict[str, int]
    persons: int
    links: pl.DataFrame
    """(method, n) of all links after the night"""


def resolve_changes(con: duckdb.DuckDBPyConnection, settings: LinkSettings, compare: Compare, id_key: bytes,
                    meter: Meter) -> DeltaOutcome | None:
    """Resolve tonight's added and removed records against the stored state; None when there is no model to
    decide pairs with (the caller then resolves in full)."""
    model = _load_model(con)
    if model is None:
        return None
    changes = query_frame(con, "SELECT record_id, change, source FROM record_changes")
    added = changes.filter(pl.col("change") == "added")["record_id"]
    removed = changes.filter(pl.col("change") == "removed")["record_id"]
    stats: dict[str, int] = {"records_added": added.len(), "records_removed": removed.len()}

    with meter("block"):
        new_records = _records_in(con, added)
        prepared_new = prepare_records(new_records)
        new_keys = hashed_keys(prepared_new)
        folded_new = folded_keys(prepared_new["record_id"], new_keys)
        partners = _sharing_a_key(con, folded_new, settings.max_block_size)
        partners = partners.filter(~partners.is_in(added.implode()))
        prepared = pl.concat([prepared_new, prepare_records(_records_in(con, partners))]).sort("record_id")
        touch = prepared["record_id"].is_in(added.implode()).to_numpy()
        pairs, block_stats = candidate_pairs(prepared, settings.max_block_size, touch=touch)
        stats.update(block_stats)
        stats["records"] = con.execute("SELECT count(*) FROM person_records").fetchall()[0][0]

    with meter("compare"):
        compared = compare(prepared, pairs)
        new_links, new_apart, conflicts = decide_pairs(compared, model, settings) if compared.height else (
            _no_links(con), pl.DataFrame(schema={"record_id_l": pl.Int64, "record_id_r": pl.Int64}), 0)
        stats.update(pairs_compared=compared.height, id_agree_name_different=conflicts)

    with meter("cluster"):
        gone = removed.implode()
        stored = "SELECT {cols} FROM links WHERE method <> 'case_context' UNION ALL SELECT {cols} FROM links_cut"
        ends = pl.concat([query_frame(con, stored.format(cols="record_id_l, record_id_r")),
                          new_links.select("record_id_l", "record_id_r")]).filter(
            ~pl.col("record_id_l").is_in(gone) & ~pl.col("record_id_r").is_in(gone))
        apart = pl.concat([query_frame(con, "SELECT record_id_l, record_id_r FROM cannot_link_pairs"), new_apart]
                          ).filter(~pl.col("record_id_l").is_in(gone) & ~pl.col("record_id_r").is_in(gone))
        old_context = query_frame(con, "SELECT * FROM links WHERE method = 'case_context'")
        context_changed = changes.filter(pl.col("source").is_in(_CONTEXT_SOURCES)).height > 0
        context = _context_links(con) if context_changed else old_context
        # who must be clustered again: the new records, the people that lost a record, and on a night that
        # changed case-context links, both ends of every such link before and after
        seeds = pl.concat([added, query_frame(con, """
            SELECT record_id FROM person_members WHERE person_id IN (
                SELECT person_id FROM person_members WHERE list_contains(?, record_id))""", [removed.to_list()]
        )["record_id"]])
        if context_changed:
            seeds = pl.concat([seeds, *(f[c] for f in (old_context, context) for c in ("record_id_l", "record_id_r"))])
        all_ids = query_frame(con, "SELECT record_id FROM person_records ORDER BY record_id")["record_id"]
        affected = _component_of(all_ids, pl.concat([ends, context.select(ends.columns)]), seeds)
        inside = affected.implode()
        frame = _records_in(con, affected)
        links_s = pl.concat([_stored_links_within(con, stored, affected), new_links.select(LINK_COLUMNS)],
                            how="vertical_relaxed").filter(pl.col("record_id_l").is_in(inside)
                                                           & pl.col("record_id_r").is_in(inside))
        apart_s = apart.filter(pl.col("record_id_l").is_in(inside) & pl.col("record_id_r").is_in(inside))
        clusters, cut = cluster_records(frame.select("record_id", "record_key", "id18"), links_s, apart_s)
        kept = links_s.join(cut.select("record_id_l", "record_id_r"), on=["record_id_l", "record_id_r"], how="anti")
        context_s = context.filter(pl.col("record_id_l").is_in(inside))
        if context_s.height:
            clusters = merge_links_into_clusters(clusters, context_s, frame)
        touched = pl.concat([affected, removed]).unique()
        # people keep the ids they had (the touched records' persons until tonight)
        previous = _previous_ids(con, touched)
        clusters = inherit_person_ids(clusters.with_columns(frame["record_key"]), previous)
        final = pl.concat([kept.select(LINK_COLUMNS), context_s], how="diagonal_relaxed").select(LINK_COLUMNS) \
            .sort("record_id_l", "record_id_r")
        persons = with_id_hmac(persons_frame(frame, clusters), id_key)
        victims_removed = changes.filter((pl.col("change") == "removed") & (pl.col("source") == "victims")).height > 0
        _write(con, touched, removed, final, cut.select(LINK_COLUMNS), new_apart, clusters, persons,
               folded_new, compared, prepared)
        _update_households(con, frame, persons["person_id"], previous["person_id"], everyone=victims_removed)
        stats.update(people_rebuilt=affected.len(), links_cut_by_guard=cut.height)
    links = query_frame(con, "SELECT method, count(*) AS n FROM links GROUP BY method ORDER BY method")
    n_persons = con.execute("SELECT count(*) FROM persons").fetchall()[0][0]
    return DeltaOutcome(stats=stats, persons=n_persons, links=links)


def _with_ids(con: duckdb.DuckDBPyConnection, sql: str, record_ids: pl.Series) -> pl.DataFrame:
    """`sql` run with the record ids registered as the table `_ids` (record_id)."""
    with registered(con, _ids=pl.DataFrame({"record_id": record_ids.cast(pl.Int64)})):
        return query_frame(con, sql)


def _previous_ids(con: duckdb.DuckDBPyConnection, touched: pl.Series) -> pl.DataFrame:
    """(record_key, person_id) of the touched records before tonight."""
    return _with_ids(con, "SELECT record_key, person_id FROM person_members "
                          "WHERE record_id IN (SELECT record_id FROM _ids)", touched)


def _records_in(con: duckdb.DuckDBPyConnection, record_ids: pl.Series) -> pl.DataFrame:
    return _with_ids(con, "SELECT r.* FROM person_records r SEMI JOIN _ids USING (record_id) ORDER BY r.record_id",
                     record_ids)


def _stored_links_within(con: duckdb.DuckDBPyConnection, stored: str, records: pl.Series) -> pl.DataFrame:
    """The stored decided links (kept and cut) whose left record is among `records` (their right one is too:
    `records` are whole components)."""
    return _with_ids(con, f"SELECT * FROM ({stored.format(cols='*')}) WHERE record_id_l IN "
                          "(SELECT record_id FROM _ids)", records)


def _sharing_a_key(con: duckdb.DuckDBPyConnection, folded_new: pl.DataFrame, max_block_size: int) -> pl.Series:
    """Stored records (still in person_records) that may pair with a new record: sharing a rule's key with one.

    An ID-typo rule only pairs a suspect with another record (matchers.blocking), so in its blocks only the
    stored suspects pair with a new record that is not one; the other records of such a block are left out,
    unless the block is too large to expand — then all of it is read, so that it is skipped as in a full run."""
    shares = []
    for r in BLOCKING_RULES:
        key = f'"{r.name}"'
        if r.suspects is None:
            shares.append(f"SELECT record_id FROM block_keys WHERE {key} IN "
                          f"(SELECT {key} FROM _new_keys WHERE {key} IS NOT NULL)")
            continue
        suspect = f'"{suspect_column(r.name)}"'
        shares.append(f"""
            SELECT record_id FROM (
                SELECT b.record_id, b.{suspect} AS suspect, n.new_suspect,
                       count(*) OVER (PARTITION BY b.{key}) + n.new AS size
                FROM block_keys b
                JOIN (SELECT {key} AS k, bool_or({suspect}) AS new_suspect, count(*) AS new
                      FROM _new_keys WHERE {key} IS NOT NULL GROUP BY k) n ON b.{key} = n.k)
            WHERE suspect OR new_suspect OR size > {int(max_block_size)}""")
    union = " UNION ".join(shares)
    with registered(con, _new_keys=folded_new):
        return query_frame(con, f"SELECT record_id FROM ({union}) SEMI JOIN person_records USING (record_id)"
                           )["record_id"].cast(pl.Int64)


def _component_of(all_ids: pl.Series, links: pl.DataFrame, seeds: pl.Series) -> pl.Series:
    """The record ids connected to a seed through the links (the seeds included)."""
    ids = all_ids.to_numpy()
    ends = links.filter(pl.col("record_id_l").is_in(all_ids.implode()) & pl.col("record_id_r").is_in(all_ids.implode()))
    a = np.searchsorted(ids, ends["record_id_l"].to_numpy())
    b = np.searchsorted(ids, ends["record_id_r"].to_numpy())
    label = component_labels(len(ids), a, b)
    wanted = seeds.unique().to_numpy()
    at = np.searchsorted(ids, wanted[np.isin(wanted, ids)])
    return pl.Series("record_id", ids[np.isin(label, np.unique(label[at]))], dtype=pl.Int64)


def _context_links(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    records = query_frame(con, "SELECT record_id, name, id18 FROM person_records WHERE list_contains(?, source) "
                               "ORDER BY record_id", [list(_CONTEXT_SOURCES)])
    return case_context_links(
        records, query_frame(con, "SELECT record_id, case_no, defendant_name FROM victim_facts"),
        query_frame(con, "SELECT record_id, respondent_name, origin_case_no, enforcement_case_no "
                                 "FROM enforcement_facts"))


def _no_links(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(con, "SELECT * FROM links LIMIT 0")


def _write(con: duckdb.DuckDBPyConnection, touched: pl.Series, removed: pl.Series, links: pl.DataFrame,
           cut: pl.DataFrame, new_apart: pl.DataFrame, clusters: pl.DataFrame, persons: pl.DataFrame,
           new_keys: pl.DataFrame, compared: pl.DataFrame, prepared: pl.DataFrame) -> None:
    """Rewrite the touched people's rows of the resolution tables, in one transaction."""
    frames = {"_touched": pl.DataFrame({"record_id": touched.cast(pl.Int64)}),
              "_removed": pl.DataFrame({"record_id": removed.cast(pl.Int64)}),
              "_links": links, "_cut": cut, "_apart": new_apart,
              "_members": clusters.select("record_id", "person_id", "record_key"), "_persons": persons,
              "_evidence": record_evidence(links), "_keys": new_keys,
              "_compared": _with_keys(compared, prepared)}
    by_pair = "record_id_l IN (SELECT record_id FROM {t}) OR record_id_r IN (SELECT record_id FROM {t})"
    statements = [
        f"DELETE FROM links WHERE {by_pair.format(t='_touched')}",
        "INSERT INTO links BY NAME SELECT * FROM _links",
        f"DELETE FROM links_cut WHERE {by_pair.format(t='_touched')}",
        "INSERT INTO links_cut BY NAME SELECT * FROM _cut",
        f"DELETE FROM cannot_link_pairs WHERE {by_pair.format(t='_removed')}",
        "INSERT INTO cannot_link_pairs BY NAME SELECT * FROM _apart",
        "DELETE FROM persons WHERE person_id IN (SELECT person_id FROM person_members "
        "WHERE record_id IN (SELECT record_id FROM _touched))",
        "INSERT INTO persons BY NAME SELECT * FROM _persons",
        "DELETE FROM person_members WHERE record_id IN (SELECT record_id FROM _touched)",
        "INSERT INTO person_members BY NAME SELECT * FROM _members",
        "DELETE FROM record_evidence WHERE record_id IN (SELECT record_id FROM _touched)",
        "INSERT INTO record_evidence BY NAME SELECT * FROM _evidence",
        "DELETE FROM block_keys WHERE record_id IN (SELECT record_id FROM _removed)",
        "INSERT INTO block_keys BY NAME SELECT * FROM _keys",
    ]
    has_cache = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'compared_pairs'").fetchall()[0][0]
    with registered(con, **frames), transaction(con):
        for sql in statements:
            con.execute(sql)
        if has_cache and compared.height:
            con.execute("INSERT INTO compared_pairs BY NAME SELECT * FROM _compared")


def _update_households(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, rebuilt: pl.Series, replaced: pl.Series,
                       *, everyone: bool) -> None:
    """Household relations of the people rebuilt tonight, from every household roll and victims' case file they
    appear in (a relation depends on the two people's own rows, and on a case's victims being one person).
    `replaced` are the people the rebuilt records belonged to until tonight: their relations go too (those
    whose id came back are written again). A night that removed a victim's row may leave a case with a single
    victim: all relations are then redone."""
    sql = """SELECT record_id, source, role, household_key, case_no, relation FROM person_records
             WHERE household_key IS NOT NULL OR (source = 'victims' AND case_no IS NOT NULL)"""
    if everyone:
        households = household_relations(query_frame(con, sql + " ORDER BY record_id"),
                                         query_frame(con, "SELECT record_id, person_id FROM person_members ORDER BY record_id"))
        household_table(con, households)
        return
    places = pl.DataFrame({"household_key": frame["household_key"].drop_nulls().unique()})
    cases = pl.DataFrame({"case_no": frame.filter(pl.col("source") == "victims")["case_no"].drop_nulls().unique()})
    rebuilt_or_replaced = pl.DataFrame({"person_id": pl.concat([rebuilt, replaced]).unique()})
    with registered(con, _places=places, _cases=cases, _rebuilt=rebuilt_or_replaced):
        records = query_frame(con, f"""SELECT * FROM ({sql}) WHERE household_key IN (SELECT household_key FROM _places)
                                       OR (source = 'victims' AND case_no IN (SELECT case_no FROM _cases))
                                       ORDER BY record_id""")
        with registered(con, _here=records.select("record_id")):
            clusters = query_frame(con, "SELECT record_id, person_id FROM person_members "
                                        "WHERE record_id IN (SELECT record_id FROM _here) ORDER BY record_id")
        mine = pl.col("person_id").is_in(rebuilt.implode()) | pl.col("household_person_id").is_in(rebuilt.implode())
        with registered(con, _relations=household_relations(records, clusters).filter(mine)), transaction(con):
            con.execute("""DELETE FROM households WHERE person_id IN (SELECT person_id FROM _rebuilt)
                           OR household_person_id IN (SELECT person_id FROM _rebuilt)""")
            con.execute("INSERT INTO households BY NAME SELECT * FROM _relations")


def _with_keys(compared: pl.DataFrame, prepared: pl.DataFrame) -> pl.DataFrame:
    """Compared pairs with the record_key of both records (the compare cache's keys)."""
    keys = prepared.select("record_id", "record_key")
    return compared.join(keys.rename({"record_id": "record_id_l", "record_key": "key_l"}), on="record_id_l",
                         how="left", maintain_order="left").join(
        keys.rename({"record_id": "record_id_r", "record_key": "key_r"}), on="record_id_r", how="left",
        maintain_order="left")
