"""Clusters of records that are one person: connected components of the links, with a guard.

Guard: a cluster never holds two different valid IDs unless an `id_typo` link between those two IDs
explains them, and never holds a cannot-link pair (two members of one household roll or one case file
that are different people). A component that would (a record without an ID linked probabilistically to
two people with different IDs, a chain through a namesake in the same household) is rebuilt greedily:
links are taken strongest first (id_exact, then id_typo, then probabilistic by match weight, ties by
record ids) and a link that would break the guard is cut. Deduplication within a source falls out of
the same clustering.

person_id is "P" + the first 16 hex characters of the SHA-256 of the cluster's smallest record_key:
deterministic, whichever file or row the records are in (the key hashes the row's cells). From one night
to the next a person keeps the id most of its records had (`inherit_person_ids`), so a new record with a
smaller key does not rename someone a lead was recorded against.
"""

from __future__ import annotations

import hashlib

import duckdb
import numpy as np
import polars as pl

__all__ = ["cluster_records", "component_labels", "person_id_for", "inherit_person_ids"]

_METHOD_RANK = {"id_exact": 0, "id_typo": 1, "probabilistic": 2}


def person_id_for(record_key: str) -> str:
    """The person id of a cluster whose smallest record_key is `record_key`."""
    return "P" + hashlib.sha256(record_key.encode("utf-8")).hexdigest()[:16]


def component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of a graph on rows 0..n-1 with edges a[k]–b[k], its component's label: the component's smallest row.

    Min-label propagation with pointer jumping, in numpy."""
    label = np.arange(n)
    if len(a) == 0:
        return label
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        while True:  # pointer jumping: follow labels to their own labels
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _id_classes(id18: pl.Series, typo_pairs: list[tuple[str, str]]) -> np.ndarray:
    """Per row, an integer class of its valid ID (-1 for none); IDs joined by an id_typo link share a class."""
    codes = id18.rank("dense").fill_null(0).cast(pl.Int64).to_numpy() - 1
    if not typo_pairs:
        return codes
    values = {v: int(c) for v, c in zip(id18.to_list(), codes) if v is not None}
    parent = {c: c for c in set(values.values())}
    for x, y in typo_pairs:
        rx, ry = _find(parent, values[x]), _find(parent, values[y])
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    root = np.array([_find(parent, c) for c in range(int(codes.max()) + 1)], dtype=np.int64)
    return np.where(codes >= 0, root[np.maximum(codes, 0)], -1)


def _greedy(rows: np.ndarray, a: np.ndarray, b: np.ndarray, order: np.ndarray, id_class: np.ndarray,
            apart: dict[int, set[int]]) -> np.ndarray:
    """Indices (into a/b) of the links cut so that no cluster holds two ID classes or a cannot-link
    pair (`apart`: row → rows it must stay apart from); links taken in `order`."""
    parent = {int(r): int(r) for r in rows}
    cls = {int(r): int(id_class[r]) for r in rows}
    avoid = {int(r): set(apart.get(int(r), ())) for r in rows}
    cut = []
    for k in order:
        ra, rb = _find(parent, int(a[k])), _find(parent, int(b[k]))
        if ra == rb:
            continue
        ca, cb = cls[ra], cls[rb]
        if (ca >= 0 and cb >= 0 and ca != cb) or any(
                x in parent and _find(parent, x) == rb for x in avoid[ra]):
            cut.append(k)
            continue
        root, child = min(ra, rb), max(ra, rb)
        parent[child] = root
        cls[root] = max(ca, cb)
        avoid[root] = avoid[ra] | avoid[rb]
    return np.array(cut, dtype=np.int64)


def cluster_records(prepared: pl.DataFrame, links: pl.DataFrame,
                    cannot_link: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clusters: record_id → person_id for every record, links cut by the guard)."""
    n = prepared.height
    ids = prepared["record_id"].to_numpy()
    a = np.searchsorted(ids, links["record_id_l"].to_numpy())
    b = np.searchsorted(ids, links["record_id_r"].to_numpy())
    label = component_labels(n, a, b)
    # only rows of a component of two or more can meet another ID or a cannot-link partner
    linked = np.flatnonzero(np.bincount(label, minlength=n)[label] > 1)
    id18 = prepared["id18"]
    typo_links = links.filter(pl.col("method") == "id_typo")
    ta, tb = np.searchsorted(ids, typo_links["record_id_l"].to_numpy()), np.searchsorted(ids, typo_links["record_id_r"].to_numpy())
    typo_pairs = [(x, y) for x, y in zip(id18.gather(ta).to_list(), id18.gather(tb).to_list())
                  if x is not None and y is not None and x != y]
    id_class = np.full(n, -1, dtype=np.int64)
    id_class[linked] = _id_classes(id18.gather(linked), typo_pairs)

    bad_labels = (
        pl.DataFrame({"label": label[linked], "cls": id_class[linked]})
        .filter(pl.col("cls") >= 0)
        .group_by("label").agg(pl.col("cls").n_unique().alias("n_ids"))
        .filter(pl.col("n_ids") > 1)
    )["label"].to_numpy()
    apart: dict[int, set[int]] = {}
    if cannot_link is not None and cannot_link.height:
        ca = np.searchsorted(ids, cannot_link["record_id_l"].to_numpy())
        cb = np.searchsorted(ids, cannot_link["record_id_r"].to_numpy())
        inside = label[ca] == label[cb]
        bad_labels = np.union1d(bad_labels, label[ca[inside]])
        for x, y in zip(ca[inside].tolist(), cb[inside].tolist()):
            apart.setdefault(x, set()).add(y)
            apart.setdefault(y, set()).add(x)
    keep = np.ones(len(a), dtype=bool)
    if len(bad_labels):
        bad = np.isin(label[a], bad_labels)
        idx = np.flatnonzero(bad)
        rank = links["method"].replace_strict(_METHOD_RANK, return_dtype=pl.Int64).to_numpy()[idx]
        weight = links["match_weight"].to_numpy()[idx]
        order = idx[np.lexsort((b[idx], a[idx], -weight, rank))]
        rows = np.unique(np.concatenate([a[idx], b[idx]]))
        cut = _greedy(rows, a, b, order, id_class, apart)
        keep[cut] = False
        label = component_labels(n, a[keep], b[keep])

    keys = prepared.select(pl.coalesce("record_key", pl.col("record_id").cast(pl.String)))["record_key"]
    clusters = pl.DataFrame({"record_id": ids, "person_id": _person_ids(label, keys)}).sort("record_id")
    return clusters, links.filter(pl.Series(~keep))


def _person_ids(label: np.ndarray, keys: pl.Series) -> pl.Series:
    """Per row, person_id_for the smallest key of its cluster (`label`: the cluster's smallest row)."""
    n = len(label)
    smallest = np.arange(n)  # per cluster root, the row holding its smallest key; a lone record's is its own
    linked = np.flatnonzero(np.bincount(label, minlength=n)[label] > 1)
    if len(linked):
        order = keys.gather(linked).arg_sort().to_numpy()
        rank = np.empty(len(linked), dtype=np.int64)
        rank[order] = np.arange(len(linked))
        first = np.full(n, len(linked), dtype=np.int64)
        np.minimum.at(first, label[linked], rank)
        roots = linked[label[linked] == linked]
        smallest[roots] = linked[order[first[roots]]]
    roots = np.flatnonzero(label == np.arange(n))
    hashed = _sha256_hex(keys.gather(smallest[roots]))
    position = np.zeros(n, dtype=np.int64)
    position[roots] = np.arange(len(roots))
    return ("P" + hashed.str.slice(0, 16)).gather(position[label]).alias("person_id")


def _sha256_hex(values: pl.Series) -> pl.Series:
    """Hex SHA-256 of each string's UTF-8 bytes, as hashlib gives it; DuckDB hashes them in bulk (starting it
    costs a tenth of a second, worth it only for many)."""
    if values.len() < 20_000:
        return pl.Series([hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values.to_list()], dtype=pl.String)
    con = duckdb.connect()
    try:
        frame = values.alias("value").to_frame()
        con.register("_values", frame.to_arrow())
        hashed = con.sql("SELECT sha256(value) AS digest FROM _values").to_arrow_table()
    finally:
        con.close()
    return pl.Series(hashed.column("digest"), dtype=pl.String)


def inherit_person_ids(clusters: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """`clusters` (record_key, person_id, …) with each person keeping the id its records had before.

    A person's id names its smallest record key, so a new record with a smaller key would give a known person
    a new id, and what was recorded against the old one (a lead marked aided) would no longer find them. So a
    person takes the id that most of its records had in `previous` (record_key, person_id) — the smallest on
    a tie — unless that id names another person tonight; a person whose own id was someone's before keeps it.
    An id goes to one person only; the rest keep their own (new people, and the smaller parts of a split).
    """
    if previous.height == 0 or clusters.height == 0:
        return clusters
    old_ids = previous["person_id"].unique()
    own = clusters["person_id"].unique()
    taken = own.filter(own.is_in(old_ids.implode()))  # ids that name a person tonight too stay with that person
    votes = (clusters.select("record_key", "person_id").join(previous.select("record_key", pl.col("person_id").alias("old")),
                                                             on="record_key")
             .filter(~pl.col("person_id").is_in(taken.implode()) & ~pl.col("old").is_in(taken.implode()))
             .group_by("person_id", "old").len())
    if votes.height == 0:
        return clusters
    best = votes.sort(["len", "old"], descending=[True, False]).unique("person_id", keep="first")
    # an old id wanted by two people goes to the one with more of its records (then the smaller id)
    won = best.sort(["len", "person_id"], descending=[True, False]).unique("old", keep="first")
    mapping = dict(zip(won["person_id"].to_list(), won["old"].to_list()))
    return clusters.with_columns(pl.col("person_id").replace(mapping))

