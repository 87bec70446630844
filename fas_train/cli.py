"""The `fas-train` command. Every user error is one line (click's 'Error: ...')."""

from __future__ import annotations

import json

import click

from annotator.core.errors import AnnotatorError, SettingError

from annotator.console import OneLineErrors


def _stores(value: str | None) -> list[str]:
    return [s for s in (value or "").split(",") if s]


@click.group(cls=OneLineErrors)
@click.version_option(package_name="fas-annotator")
def cli():
    """Train and evaluate face anti-spoofing models on label stores made by `annotate`."""



# infer's and export-onnx's default weights: those whose thresholds eval chose (checkpoints.load_decider)
DECIDER_DEFAULT = "the one `fas-train eval` last scored, last before any eval"

@cli.command()
@click.option("--store", type=str, default=None, help="Store(s), comma-separated: train, dev and test groups "
                                                       "all come from them.")
@click.option("--train", "train_stores", type=str, default=None,
              help="Source store(s) for leave-one-dataset-out (OCIM): train and dev groups come from them.")
@click.option("--test", "test_stores", type=str, default=None, help="Target store(s) of the test group (OCIM).")
@click.option("--stores", "named_stores", type=str, default=None,
              help="NAME=STORE,... for --protocol ocim:NAME (train on the others, test on NAME).")
@click.option("--protocol", type=str, default="split", show_default=True,
              help="protocols/<name> of the stores, or `split` (meta/split) or `all`.")
@click.option("--model", required=True, help="Model name (`fas-train models` lists them).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch", type=int, default=32, show_default=True, help="Rows per training step (1..4096).")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate (halved every --lr-step).")
@click.option("--lr-step", type=int, default=200, show_default=True,
              help="Epochs between learning-rate halvings (at least 1).")
@click.option("--size", type=int, default=None, help="Input side (default: the store's crop size).")
@click.option("--width", type=float, default=1.0, show_default=True,
              help="Channel multiplier, a finite number in (0, 4] (1 = the paper's).")
@click.option("--alpha", type=float, default=None, help="dccdn3: weight of the MSE loss [1].")
@click.option("--beta", type=float, default=None, help="dccdn3: weight of the contrastive depth loss [1].")
@click.option("--pretrained", type=str, default=None,
              help="resnet50_ps, lgsc: backbone weights, `imagenet` (torchvision's, from the torch cache) or a "
                   "state-dict file [random init].")
@click.option("--domain-key", type=str, default=None,
              help="ccdd: the meta column whose values are the domains [the training store of each row].")
@click.option("--backbone", type=str, default=None, help="ccdd: feature backbone, resnet18 or resnet50 [resnet18].")
@click.option("--grl-lambda", type=str, default=None,
              help="ccdd: gradient reversal factor, a number or `dann` (2/(1+exp(-10p))-1 over training) [0.2].")
@click.option("--video", is_flag=True, help="ccdd: add the video branch (LSTM over whole-video sequences), "
                                            "trained alternately with the image branch.")
@click.option("--frames", type=int, default=None, help="ccdd --video: frames per sequence [8].")
@click.option("--video-batch", type=int, default=None, help="ccdd --video: sequences per video step [6].")
@click.option("--seg-classes", type=click.Choice(["binary", "types"]), default=None,
              help="segdec: segmentation channels, live/spoof or live + one per attack type [binary].")
@click.option("--w-con", type=float, default=None, help="segdec: weight of the supervised contrastive loss [0.5].")
@click.option("--w-seg", type=float, default=None, help="segdec: weight of the segmentation loss [0.5].")
@click.option("--pyramid", type=str, default=None,
              help="resnet50_ps, cdcn_ps: the supervised pyramid scales, e.g. 8,4,2,1 or 32 [their defaults].")
@click.option("--mcrea", type=float, default=0.0, show_default=True, help="MCREA gamma on the fly (0: off).")
@click.option("--mcrea-rho", type=int, default=1, show_default=True,
              help="MCREA regions taken per augmented sample (0..5).")
@click.option("--mcrea-scheme", type=click.Choice(["integrated", "overlay", "clipping"]), default="integrated",
              show_default=True)
@click.option("--no-augment", is_flag=True, help="No flips, crops or colour jitter.")
@click.option("--exclude-flagged", is_flag=True,
              help="Leave out training rows flagged bad in label QA (`annotate serve --allow-flags`).")
@click.option("--weight-by", type=str, default="",
              help="A quality column (docs/store.md), or audit:PATH for a `fas-train audit` table's label_quality, "
                   "weighing each row's pixel loss: floor + (1 - floor) x clip(value, 0, 1); no value weighs 1. "
                   "Models with a per-row pixel loss (dccdn3, segdec).")
@click.option("--weight-floor", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="--weight-by: the weight of a row whose signal is 0.")
@click.option("--threshold", type=str, default="eer", show_default=True,
              help="The rule of the per-epoch dev figures' threshold, chosen on dev: eer, bpcer1 or a number.")
@click.option("--best-by", type=str, default="hter", show_default=True,
              help="The dev figure that picks RUN/best.pt: hter, acer, eer, auc, or loss (the training loss).")
@click.option("--patience", type=int, default=0, show_default=True,
              help="Stop after N epochs without a better --best-by (0: train all --epochs).")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader worker processes.")
@click.option("--device", type=str, default=None, help="cuda, cuda:N or cpu [cuda when present].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, help="Run directory (config, rows.json, last.pt, best.pt, logs); rerun to resume.")
def train(**flags):
    """Train a model on the train group of a protocol (resumes a run directory)."""
    from fas_train.config import TrainConfig
    from fas_train.model_options import model_options
    from fas_train.train import train as run_training

    check_sizes(flags["batch"], flags["width"], flags["lr_step"])
    sources, tests, protocol = _sources(flags["store"], flags["train_stores"], flags["test_stores"],
                                        flags["named_stores"], flags["protocol"])
    settings = {k: flags[k] for k in ("model", "epochs", "batch", "lr", "lr_step", "size", "width", "mcrea",
                                      "mcrea_rho", "mcrea_scheme", "workers", "seed", "exclude_flagged",
                                      "weight_by", "weight_floor", "threshold", "best_by", "patience")}
    cfg = TrainConfig(**settings, train=sources, protocol=protocol, test=tests, augment=not flags["no_augment"],
                      model_options=model_options(flags, sources, protocol))
    result = run_training(cfg, flags["out"], device=flags["device"])
    click.echo(json.dumps(result.summary()))


from fas_train import MAX_BATCH  # noqa: E402  (TrainConfig.validate checks it for library callers too)


def check_sizes(batch: int, width: float, lr_step: int = 1) -> None:
    """The values that size memory or the schedule, before any store is opened: a batch of 10^9 rows
    fills shared memory, width 0 or NaN breaks the model, --lr-step 0 the learning-rate schedule."""
    from annotator.config import check_range
    from fas_train.models.base import check_width

    check_range("batch", batch, 1, MAX_BATCH)
    check_width(width)
    if lr_step < 1:
        raise SettingError("lr_step", f"must be at least 1 (epochs between learning-rate halvings), got {lr_step}")


def leave_one_out(protocol: str, named: str | None) -> tuple[list[str], list[str], str]:
    """`--protocol ocim:M --stores O=o.zarr,C=c.zarr,I=i.zarr,M=m.zarr` -> (train stores, test stores,
    the protocol inside each store: `split`). Train on every named store but the target, test on it."""
    target = protocol.split(":", 1)[1].strip()
    pairs = [p.split("=", 1) for p in (named or "").split(",") if p.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise AnnotatorError("--protocol ocim:TARGET needs --stores NAME=STORE,NAME=STORE,... (e.g. O=oulu.zarr,"
                             "C=casia.zarr,I=replay.zarr,M=msu.zarr)")
    stores = {k.strip(): v.strip() for k, v in pairs}
    if target not in stores:
        raise AnnotatorError(f"--protocol ocim:{target}: {target!r} is not one of the --stores names "
                             f"({', '.join(stores)})")
    if len(stores) < 2:
        raise AnnotatorError("--protocol ocim:TARGET needs at least one source store besides the target")
    return [v for k, v in stores.items() if k != target], [stores[target]], "split"


@cli.command()
@click.option("--store", type=str, default=None, help="Store(s) for train, dev and test.")
@click.option("--train", "train_stores", type=str, default=None, help="Source store(s) (leave-one-dataset-out).")
@click.option("--test", "test_stores", type=str, default=None, help="Target store(s).")
@click.option("--stores", "named_stores", type=str, default=None, help="NAME=STORE,... for --protocol ocim:NAME.")
@click.option("--protocol", type=str, default="split", show_default=True)
@click.option("--model", required=True)
@click.option("--param", "params", multiple=True, required=True,
              help="NAME=V1,V2,...: a training setting (lr, batch, ...) or a model option (alpha, ...); repeat it.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch", type=int, default=32, show_default=True, help="Rows per training step (1..4096).")
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--size", type=int, default=None)
@click.option("--width", type=float, default=1.0, show_default=True, help="Channel multiplier in (0, 4].")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--no-augment", is_flag=True)
@click.option("--threshold", type=str, default="eer", show_default=True)
@click.option("--device", type=str, default=None)
@click.option("--scheduler", "scheduler_address", type=str, default=None,
              help="Run the grid's runs as tasks of the Dask scheduler at ADDRESS (one GPU each when its workers "
                   "advertise GPU resources).")
@click.option("--out", required=True, help="Folder of the runs and of grid.csv / grid.md; rerun to resume.")
def grid(store, train_stores, test_stores, named_stores, protocol, model, params, seeds, epochs, batch, lr, size,
         width, workers, no_augment, threshold, device, scheduler_address, out):
    """Train and evaluate every setting of a parameter grid over several seeds; write the table of
    mean +- std per setting (grid.csv, grid.md), the best setting marked."""
    from fas_train.config import TrainConfig
    from fas_train.grid import parse_param, run_grid
    from fas_train.model_options import model_options

    check_sizes(batch, width)
    try:
        grid_params = dict(parse_param(p) for p in params)
    except ValueError as e:
        raise AnnotatorError(str(e)) from None
    train_list, test_list, protocol = _sources(store, train_stores, test_stores, named_stores, protocol)
    base = TrainConfig(model=model, train=train_list, protocol=protocol, test=test_list, epochs=epochs, batch=batch,
                       lr=lr, size=size, width=width, augment=not no_augment, workers=workers,
                       model_options=model_options({"model": model}, train_list, protocol))
    base.validate()
    kwargs = {"rule": threshold, "device": device}
    if scheduler_address:
        from pipelines.cluster import connect  # an unreachable address is a one-line error there

        with connect(scheduler_address) as client:
            rows = run_grid(base, grid_params, seeds, out, kwargs, client=client)
    else:
        rows = run_grid(base, grid_params, seeds, out, kwargs)
    click.echo(open(f"{out}/grid.md").read().rstrip())
    failed = sum(r["failed"] for r in rows)
    if failed:
        click.echo(f"{failed} run(s) failed (see the table); rerun the same command to retry them", err=True)


def _sources(store, train_stores, test_stores, named_stores, protocol) -> tuple[list[str], list[str], str]:
    """(train stores, test stores, protocol) from --store / --train/--test / --protocol ocim:T --stores."""
    if protocol.startswith("ocim:"):
        if store or train_stores or test_stores:
            raise AnnotatorError("--protocol ocim:TARGET takes its stores from --stores, not --store/--train/--test")
        return leave_one_out(protocol, named_stores)
    if named_stores:
        raise AnnotatorError("--stores goes with --protocol ocim:TARGET")
    if bool(store) == bool(train_stores):
        raise AnnotatorError("give either --store S[,S...] or --train S[,S...] (with --test T[,T...])")
    return _stores(store or train_stores), _stores(test_stores), protocol


@cli.command()
@click.option("--run", "run_dir", required=True, help="Run directory written by `fas-train train` (and `eval`).")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--threshold", type=float, default=None,
              help="Decision threshold [the one `fas-train eval` chose on dev, from RUN/eval/metrics.json].")
@click.option("--device", type=str, default=None, help="cuda, cuda:N or cpu [cuda when present].")
@click.option("--batch", type=int, default=32, show_default=True, help="Frames per model call (1..4096).")
@click.option("--fan-checkpoint", type=str, default=None,
              help="A store made with --landmarker fan: its FAN weights on this machine [the recorded path, then "
                   "the torch hub cache]; must be the same file (sha256).")
@click.option("--fan-depth-checkpoint", type=str, default=None, help="The same for 3D FAN's ResNetDepth.")
@click.option("--checkpoint", type=str, default=None, help=f"last, best or a file [{DECIDER_DEFAULT}].")
def infer(run_dir, inputs, threshold, device, batch, fan_checkpoint, fan_depth_checkpoint, checkpoint):
    """Score images, videos or folders of them: one JSON line per input (score, decision, face box)."""
    from annotator.config import check_range
    from fas_train.infer import Inference, media_inputs

    from annotator.console import filter_native_stderr

    filter_native_stderr()  # MediaPipe's native log lines would interleave with the results
    files = media_inputs(list(inputs))
    check_range("batch", batch, 1, MAX_BATCH)
    job = Inference(run_dir, device=device, threshold=threshold, batch=batch, fan_checkpoint=fan_checkpoint,
                    fan_depth_checkpoint=fan_depth_checkpoint, checkpoint=checkpoint)
    for level, t in job.limits.items():
        click.echo(f"{level} threshold {t['threshold']:.6g} (rule {t['rule']}, from {t['from']}); "
                   "score >= threshold: attack", err=True)
    for path in files:
        click.echo(json.dumps(job(path)))


@cli.command("export-onnx")
@click.option("--run", "run_dir", required=True, help="Run directory written by `fas-train train`.")
@click.option("--out", required=True, help="The ONNX file to write (and OUT.json beside it).")
@click.option("--checkpoint", type=str, default=None,
              help=f"last, best or a file [{DECIDER_DEFAULT}]; the sidecar gets eval's thresholds when eval scored it.")
def export_onnx(run_dir, out, checkpoint):
    """Write a run's model as ONNX (store uint8 crops in, attack scores out), checked against PyTorch."""
    from fas_train.onnx_export import export_onnx as write_onnx

    res = write_onnx(run_dir, out, checkpoint)
    click.echo(f"wrote {out} (inputs: {', '.join(res['inputs'])}); ONNX Runtime vs PyTorch on {res['checked_on']}: "
               f"max |difference| {res['max_difference']:.2g}")
    if not res["thresholds"]:
        click.echo(f"note: {out}.json holds no decision threshold: `fas-train eval --run {run_dir}"
                   f"{' --checkpoint ' + checkpoint if checkpoint else ''}` has not scored these weights", err=True)


@cli.command("eval")
@click.option("--run", "run_dir", required=True, help="Run directory written by `fas-train train`.")
@click.option("--store", type=str, default=None, help="Store(s) for dev and test [the run's].")
@click.option("--test", "test_stores", type=str, default=None, help="Test store(s) [the run's --test, else --store].")
@click.option("--protocol", type=str, default=None, help="Protocol [the run's].")
@click.option("--threshold", type=str, default=None,
              help="Threshold chosen on dev: eer, bpcer1 (BPCER = 1 %, as Fine-grained annotation on WMCA) or a number "
                   "[the run's --threshold, eer by default].")
@click.option("--checkpoint", type=str, default=None,
              help="last (RUN/last.pt), best (RUN/best.pt: the epoch of the best dev figure) or a file [last].")
@click.option("--device", type=str, default=None)
@click.option("--workers", type=int, default=None, help="DataLoader workers [the run's].")
@click.option("--out", type=str, default=None, help="Folder for metrics.json, scores and curves [RUN/eval].")
@click.option("--save-cues", type=click.IntRange(min=0), default=0, show_default=True,
              help="lgsc: write image | cue PNGs of the first N test rows to EVAL/cues/.")
@click.option("--save-masks", type=click.IntRange(min=0), default=0, show_default=True,
              help="segdec: write predicted | label spoof-mask overlays of the first N test rows to EVAL/masks/.")
def eval_(run_dir, store, test_stores, protocol, threshold, checkpoint, device, workers, out, save_cues, save_masks):
    """Score dev and test, choose the threshold on dev, apply it to test; write metrics, scores, ROC, DET.

    Scores: higher = more likely an attack."""
    from pathlib import Path

    from fas_train.evaluate import evaluate_run
    from fas_train.checkpoints import run_config
    from fas_train.metrics import thin_figures

    cfg = run_config(run_dir)
    stores = _stores(store) or cfg.train
    tests = _stores(test_stores) or (cfg.test if not store else None) or stores
    report = evaluate_run(run_dir, stores, protocol or cfg.protocol, tests, rule=threshold or cfg.threshold, device=device,
                          checkpoint=checkpoint, out=out, workers=workers, save_cues=save_cues,
                          save_masks=save_masks)
    keys = ("threshold", "apcer", "bpcer", "acer", "hter", "eer", "auc")
    short = {level: {k: round(report[level][k], 4) for k in keys} for level in ("frame", "video")}
    counts = {level: {part: _counts(r) for part, r in (("test", report[level]), ("dev", report[level]["dev"]))}
              for level in ("frame", "video")}
    if "segmentation" in report:
        short["segmentation_hter"] = round(report["segmentation"]["hter"], 4)
    if "cross_dataset" in report:
        short["cross_dataset_hter"] = {k: round(v["hter"], 4) for k, v in report["cross_dataset"].items()}
    folder = out or str(Path(run_dir) / "eval")
    click.echo(json.dumps({"model": report["model"], "protocol": report["protocol"], "checkpoint": report["checkpoint"],
                           "epoch": report["epoch"], **short, "counts": counts,
                           "written": f"{folder}/metrics.json, scores_dev.csv, scores_test.csv, roc.png, det.png"},
                          indent=1))
    for note in thin_figures(report["frame"]) + thin_figures(report["video"]):
        click.echo(f"note: {note}", err=True)


def _counts(r: dict) -> str:
    """The samples behind one set's figures: "12 bona fide, 3 attack (print 2, replay 1)"."""
    species = ", ".join(f"{k} {n}" for k, n in r["n_attack_per_species"].items())
    return f"{r['n_bona_fide']} bona fide, {r['n_attack']} attack" + (f" ({species})" if species else "")


@cli.command()
@click.argument("scores", type=str)
@click.option("--dev", type=str, default=None, help="Dev scores CSV: the threshold is chosen there.")
@click.option("--threshold", type=str, default="eer", show_default=True, help="eer, bpcer1 or a number.")
@click.option("--video", is_flag=True, help="Score videos by the mean of their frames (needs video_id).")
def metrics(scores, dev, threshold, video):
    """ISO/IEC 30107-3 metrics of a scores CSV (columns score,is_attack,attack_type[,video_id]) as JSON.

    Scores: higher = more likely an attack; a sample is an attack when score >= threshold.
    Without --dev the threshold comes from SCORES itself (reported as optimistic)."""
    from fas_train.metrics import evaluate, read_scores

    test = read_scores(scores)
    test.check_both_classes(scores)
    d = read_scores(dev) if dev else None
    click.echo(json.dumps(evaluate(test, d, threshold, video=video), indent=2))


@cli.command()
def models():
    """List the registered models and the store arrays each reads."""
    from fas_train.models import MODELS, create

    for name in MODELS.names():
        m = create(name, width=0.1)
        click.echo(f"{name}\n    trains on: image, {', '.join(m.train_needs)}\n    scores from: "
                   f"{', '.join(('image',) + tuple(m.needs))}")
        for key in ("outputs", "loss", "score"):
            click.echo(f"    {key}: {m.card.get(key, '(not described)')}")
        options = MODELS.describe(name).options
        click.echo(f"    options: {', '.join(options) if options else '(none)'}; --weight-by: "
                   f"{'yes' if m.weighs_rows else 'no'}")


@cli.command()
@click.option("--store", required=True, help="Store(s), comma-separated.")
@click.option("--protocol", type=str, default="all", show_default=True, help="protocols/<name>, `split` or `all`.")
@click.option("--group", type=click.Choice(["train", "dev", "test"]), default="train", show_default=True)
@click.option("--model", default="dccdn3", show_default=True, help="A model that predicts the three-channel map.")
@click.option("--folds", type=int, default=3, show_default=True, help="k: folds split by subject (else video).")
@click.option("--epochs", type=int, default=6, show_default=True, help="Epochs per fold.")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Input side.")
@click.option("--width", type=float, default=0.25, show_default=True, help="Channel multiplier.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=str, default=None, help="cuda, cuda:N or cpu [cuda when present].")
@click.option("--worst", type=click.IntRange(min=0), default=10, show_default=True, help="Rows to print.")
@click.option("--out", required=True, help="Folder for audit.csv (scores keyed by store_id, sample_id) and audit.json.")
def audit(store, protocol, group, model, folds, epochs, batch, size, width, seed, device, worst, out):
    """Score every row by how much its label disagrees with a model trained on the other folds."""
    from fas_train.audit import AuditConfig, audit as run_audit, check

    check_sizes(batch, width)
    cfg = AuditConfig([s for s in store.split(",") if s], protocol, group, model, folds, epochs, batch,
                      size=size, width=width, seed=seed)
    check(cfg)
    rows = run_audit(cfg, out, device)
    click.echo(f"audited {len(rows)} rows in {folds} folds; lowest label quality first ({out}/audit.csv):")
    for r in rows[:worst]:
        click.echo(f"  {r['sample_id']}  quality {r['label_quality']:.3f}  worst region {r['worst_region']} "
                   f"({r['worst_region_quality']:.3f})")


def main() -> None:
    cli(prog_name="fas-train")
