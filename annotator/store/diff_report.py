"""The text report of `annotate diff` (a DiffTable of diff.py, for people): the counts, the mean IoUs
per (dataset, attack_type), the status changes, the matched rows that differ most, the rows in one
store only. The machine forms (JSON, CSV) are DiffTable.write_json / write_csv."""

from __future__ import annotations

import numpy as np

from .diff import ONLY_A, ONLY_B, DiffTable, status_name


def report(table: DiffTable, worst: int = 20) -> str:
    """The report; `worst`: how many differing rows, and rows of one store only, to list."""
    total, groups = table.summary()
    lines = [_store_line("A", table.a, table.committed[0], table.stored[0]),
             _store_line("B", table.b, table.committed[1], table.stored[1]),
             f"{total['matched']} rows matched by sample_id and frame_index, {total['only_a']} only in A, "
             f"{total['only_b']} only in B; status changed in {total['status_changed']}", "",
             "mean IoU of the label channels over matched rows (-: the channel is empty in both rows of every pair)"]
    every = [*groups, total]
    lines += _grid(["dataset", "attack_type", "matched", "only A", "only B", "status changed", *table.channels],
                   [[g["dataset"], g["attack_type"], g["matched"], g["only_a"], g["only_b"], g["status_changed"],
                     *map(_fmt, g["channel_iou"].values())] for g in every])
    lines += ["", "mean IoU of the regions over matched rows (-: the region is in neither row of every pair)"]
    lines += _grid(["dataset", "attack_type", *table.regions],
                   [[g["dataset"], g["attack_type"], *map(_fmt, g["region_iou"].values())] for g in every])
    changes = [f"  {g['dataset']}/{g['attack_type']}: " + ", ".join(f"{k} {v}" for k, v in g["status_changes"].items())
               for g in groups if g["status_changed"]]
    lines += ["", "status changes (A -> B):" + ("" if changes else " none"), *changes]
    lines += _worst_lines(table, worst) + _only_lines(table, ONLY_A, worst) + _only_lines(table, ONLY_B, worst)
    return "\n".join(lines)


def _store_line(name: str, url: str, committed: int, stored: int) -> str:
    if committed == stored:
        return f"{name}: {url} ({stored} rows)"
    return f"{name}: {url} ({committed} of {stored} rows committed; rows of uncommitted shards count as absent)"


def worst_rows(table: DiffTable, worst: int) -> np.ndarray:
    """Table positions of the `worst` differing matched rows: lowest mean channel IoU first (none
    last), then lowest region IoU."""
    rows = np.flatnonzero(table.differing())
    mean = np.nan_to_num(table.mean_channel_iou()[rows], nan=2.0)
    lowest = np.nan_to_num(table.region_iou[rows], nan=2.0).min(axis=1, initial=2.0)
    return rows[np.lexsort((lowest, mean))][:worst]


def _worst_lines(table: DiffTable, worst: int) -> list[str]:
    differing = int(table.differing().sum())
    order = worst_rows(table, worst)
    if not differing:
        return ["", "no matched row differs" if table.matched else "no row matched"]
    lines = ["", f"{len(order)} of the {differing} matched rows that differ, lowest mean channel IoU first"]
    mean, body = table.mean_channel_iou(), []
    for i in order.tolist():
        ious = np.nan_to_num(table.region_iou[i], nan=2.0)
        k = int(np.argmin(ious)) if len(ious) else 0
        region = f"{table.regions[k]} {_fmt(table.region_iou[i, k])}" if len(ious) and ious[k] < 1 else "-"
        sa, sb = status_name(int(table.status_a[i])), status_name(int(table.status_b[i]))
        body.append([table.sample_id[i], table.frame_index[i], table.attack_type[i], _fmt(mean[i]),
                     *map(_fmt, table.channel_iou[i]), region, sa if sa == sb else f"{sa} -> {sb}"])
    return lines + _grid(["sample_id", "frame", "attack_type", "mean", *table.channels, "lowest region", "status"],
                         body)


def _only_lines(table: DiffTable, where: int, worst: int) -> list[str]:
    rows = np.flatnonzero(table.where == where)
    if not len(rows):
        return []
    name, row = ("A", table.row_a) if where == ONLY_A else ("B", table.row_b)
    lines = ["", f"rows only in {name} ({len(rows)}):"]
    lines += [f"  {table.sample_id[i]} frame {table.frame_index[i]} (row {row[i]})" for i in rows[:worst].tolist()]
    if len(rows) > worst:
        lines.append(f"  ... and {len(rows) - worst} more (--json or --out lists every row)")
    return lines


def _fmt(v) -> str:
    """An IoU cut (not rounded) to 3 decimals, so that one below 1 never reads 1.000; "-" for none."""
    return "-" if v is None or np.isnan(v) else f"{np.floor(float(v) * 1000) / 1000:.3f}"


def _grid(header: list[str], rows: list[list]) -> list[str]:
    """Text columns, each as wide as its widest cell."""
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
