"""`fas-train grid`: every setting of a parameter grid, several seeds each, trained and evaluated,
then one table of mean +- std per setting (CSV and Markdown), the best setting marked, as the
segmentation-decoder supplement's Table 1 reports its loss-weight grid.

A parameter is a TrainConfig field (lr, batch, epochs, mcrea, ...) or else a model option (alpha,
beta, scales, ...). Each run lives in OUT/<setting>/seed<k>; a finished run (its eval/metrics.json
present) is not run again, so a rerun resumes. A run that fails is a row of the table with its
error and does not stop the others. Runs go one after another, or as tasks of a Dask client.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

from fas_train.config import TrainConfig

METRICS = ("hter", "acer", "eer", "auc")  # frame level, from each run's eval/metrics.json
BEST_BY = "hter"  # lower is better


def parse_param(text: str) -> tuple[str, list]:
    """'w_con=0.2,0.5' -> ('w_con', [0.2, 0.5]); values become int, float or stay text."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ValueError(f"--param takes NAME=V1,V2,..., got {text!r}")

    def value(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    return name.strip(), [value(v.strip()) for v in values.split(",") if v.strip()]


def settings(params: dict[str, list]) -> list[dict]:
    """The cartesian product of the parameter values, in the order given."""
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


def label(setting: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in setting.items()) or "base"


def config_for(base: TrainConfig, setting: dict, seed: int) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    direct = {k: v for k, v in setting.items() if k in fields}
    options = {**base.model_options, **{k: v for k, v in setting.items() if k not in fields}}
    return dataclasses.replace(base, seed=seed, model_options=options, **direct)


def run_one(cfg_dict: dict, folder: str, eval_kwargs: dict) -> dict:
    """Train and evaluate one run in `folder` (skipped when its metrics exist); returns its frame
    metrics, or {"error": text}. Plain function: runs here or as a Dask task alike."""
    from fas_train.evaluate import evaluate_run
    from fas_train.train import train

    metrics = Path(folder) / "eval" / "metrics.json"
    try:
        if not metrics.exists():
            cfg = TrainConfig(**cfg_dict)
            train(cfg, folder, device=eval_kwargs.get("device"), progress=False)
            evaluate_run(folder, cfg.train, cfg.protocol, cfg.test or None, rule=eval_kwargs.get("rule", "eer"),
                         device=eval_kwargs.get("device"), workers=cfg.workers)
        frame = json.loads(metrics.read_text())["frame"]
        return {m: float(frame[m]) for m in METRICS}
    except Exception as e:  # one failed run is a row of the table, not the end of the grid
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}


def run_grid(base: TrainConfig, params: dict[str, list], seeds: int, out: str, eval_kwargs: dict | None = None,
             client=None) -> list[dict]:
    """Every setting x seed (seeds 0..seeds-1); returns the table rows (see aggregate) and writes
    OUT/grid.csv and OUT/grid.md."""
    eval_kwargs = eval_kwargs or {}
    jobs = []
    for setting in settings(params):
        for seed in range(seeds):
            folder = Path(out) / label(setting) / f"seed{seed}"
            folder.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((setting, seed, dataclasses.asdict(config_for(base, setting, seed)), str(folder)))
    if client is not None:
        gpus = any("GPU" in (w.get("resources") or {}) for w in client.scheduler_info()["workers"].values())
        resources = {"GPU": 1} if gpus else None  # one GPU per run where the workers advertise them
        futures = [client.submit(run_one, c, f, eval_kwargs, pure=False, resources=resources) for _, _, c, f in jobs]
        results = client.gather(futures)
    else:
        results = [run_one(c, f, eval_kwargs) for _, _, c, f in jobs]
    rows = aggregate([(s, seed, r) for (s, seed, _, _), r in zip(jobs, results)])
    write_tables(rows, Path(out))
    return rows


def aggregate(results: list[tuple[dict, int, dict]]) -> list[dict]:
    """One row per setting: {"setting", "runs", "failed", "errors", <metric>: (mean, std)}; std is the
    sample standard deviation (0 for one run); the row with the lowest mean HTER has "best": True."""
    rows: dict[str, dict] = {}
    for setting, _, r in results:
        row = rows.setdefault(label(setting), {"setting": label(setting), "runs": 0, "failed": 0, "errors": [],
                                               "_values": {m: [] for m in METRICS}})
        if "error" in r:
            row["failed"] += 1
            row["errors"].append(r["error"])
            continue
        row["runs"] += 1
        for m in METRICS:
            row["_values"][m].append(r[m])
    for row in rows.values():
        for m, vs in row.pop("_values").items():
            if vs:
                mean = sum(vs) / len(vs)
                std = math.sqrt(sum((v - mean) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0
                row[m] = (mean, std)
            else:
                row[m] = None
        row["best"] = False
    done = [r for r in rows.values() if r[BEST_BY] is not None]
    if done:
        min(done, key=lambda r: r[BEST_BY][0])["best"] = True
    return list(rows.values())


def write_tables(rows: list[dict], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = ["setting", "runs", "failed", *(f"{m}_mean" for m in METRICS), *(f"{m}_std" for m in METRICS), "best"]
    lines = [",".join(header)]
    for r in rows:
        means = [f"{r[m][0]:.6f}" if r[m] else "" for m in METRICS]
        stds = [f"{r[m][1]:.6f}" if r[m] else "" for m in METRICS]
        lines.append(",".join([f'"{r["setting"]}"', str(r["runs"]), str(r["failed"]), *means, *stds,
                               "1" if r["best"] else "0"]))
    (folder / "grid.csv").write_text("\n".join(lines) + "\n")
    md = ["| setting | runs | " + " | ".join(m.upper() for m in METRICS) + " |",
          "|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        cells = [f"{100 * r[m][0]:.2f} ± {100 * r[m][1]:.2f}" if r[m] else "—" for m in METRICS]
        name = f"**{r['setting']}** (best)" if r["best"] else r["setting"]
        runs = f"{r['runs']}" + (f" ({r['failed']} failed: {r['errors'][0]})" if r["failed"] else "")
        md.append(f"| {name} | {runs} | " + " | ".join(cells) + " |")
    (folder / "grid.md").write_text("\n".join(md) + "\n\nValues in %, mean ± sample std over seeds; best = lowest "
                                    "mean HTER.\n")
