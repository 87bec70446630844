"""The QA page's comparison with a second store B (`annotate serve A --compare B`): A's rows matched to
B's by (sample_id, frame_index) as `annotate diff` matches them, B's layers of the matched row, and
that one row's IoU per label channel and region (annotator/store/diff.py), computed on demand.

B must hold the same dataset, crop size, channel and region names as A (diff.py's refusals, one line
before the server starts). B's committed rows are read once at start (its sample_id and frame_index
columns, sorted for lookups); rows B commits later are not picked up until a restart."""

from __future__ import annotations

import numpy as np
from flask import Flask, jsonify

from annotator.store import diff

from .catalog import QueryError
from .render import LAYERS, Renderer


class Comparison:
    """A's rows (served.renderer) matched to the store at b_url."""

    def __init__(self, a_url: str, b_url: str, a_renderer: Renderer):
        (_, _), (rb, lb) = diff.open_comparable(a_url, b_url, "--compare")
        side = diff.read_keys(lb.url, rb, lb)
        self.url, self.a = lb.url, a_renderer
        self.b = Renderer(rb)
        self.channels = list(lb.attrs.get("label_channels", ["attack", "live", "background"]))
        self.regions = list(lb.attrs.get("region_names", []))
        ids = np.asarray(side.meta["sample_id"]).astype(str)
        frames = np.asarray(side.meta["frame_index"]).astype(np.int64)
        order = np.lexsort((side.rows, frames, ids))  # by id, frame, then row: the first committed row wins
        self._ids, self._frames, self._rows = ids[order], frames[order], side.rows[order]

    def match(self, row: int) -> tuple[str, int, int | None]:
        """(A's sample_id, frame_index, B's row or None) of A's row."""
        sid = str(self.a.row("meta/sample_id", row))
        frame = int(self.a.row("meta/frame_index", row)) if "frame_index" in self.a.root["meta"] else -1
        lo, hi = np.searchsorted(self._ids, sid, "left"), np.searchsorted(self._ids, sid, "right")
        k = lo + int(np.searchsorted(self._frames[lo:hi], frame, "left"))
        found = k < hi and int(self._frames[k]) == frame
        return sid, frame, int(self._rows[k]) if found else None

    def row(self, row: int) -> dict:
        """What the sample view shows of B for A's row: B's row (None: not in B) and the IoUs."""
        sid, frame, b_row = self.match(row)
        out = {"row": row, "b": self.url, "sample_id": sid, "frame_index": frame, "b_row": b_row,
               "channel_iou": None, "region_iou": None, "mean_channel_iou": None}
        if b_row is None:
            return out
        ch = diff.channel_iou(self.a.row("label", row)[None], self.b.row("label", b_row)[None])
        rg = diff.region_iou(self.a.row("region", row)[None], self.b.row("region", b_row)[None], len(self.regions))
        out.update(channel_iou=_named(self.channels, ch[0]), region_iou=_named(self.regions, rg[0]),
                   mean_channel_iou=_number(diff.nanmean(ch, axis=1)[0]),
                   status_b=diff.status_name(int(self.b.row("meta/status", b_row))))
        return out

    def layer(self, row: int, name: str) -> bytes:
        """B's layer `name` of the row matched to A's row; 404 when B lacks it."""
        known = list(LAYERS) + [f"pyramid-{k}" for k in self.b.pyramid]
        if name not in known:
            raise QueryError(f"layer {name!r} is unknown; use one of {', '.join(known)}")
        sid, frame, b_row = self.match(row)
        if b_row is None:
            raise QueryError(f"sample {sid} frame {frame} is not in B ({self.url})", 404)
        return self.b.layer(b_row, name)


def _number(v) -> float | None:
    return None if np.isnan(v) else round(float(v), 6)


def _named(names: list[str], values: np.ndarray) -> dict:
    return {n: _number(v) for n, v in zip(names, values)}


def add_compare(app: Flask, served, comparison: Comparison | None, picture) -> None:
    """GET /api/compare/<row> and GET /compare/<row>/<layer>.png; both 404 without --compare.
    picture: how a PNG is answered (app.py's)."""

    def need() -> Comparison:
        if comparison is None:
            raise QueryError("this server compares with no second store; restart it with --compare B", 404)
        return comparison

    @app.get("/api/compare/<int:row>")
    def compare_row(row: int):
        served.check_row(row)
        return jsonify(need().row(row))

    @app.get("/compare/<int:row>/<name>.png")
    def compare_layer(row: int, name: str):
        served.check_row(row)
        return picture(need().layer(row, name))
