"""`annotate run`: the flags grouped into the run's AnnotateConfig (what the store records) and how
it executes (cluster, retries, resume), then the pipeline (pipelines/run.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from annotator.core.errors import AnnotatorError

from .group import cli, setup_logging

# How the run executes, not what it writes: pipelines.run.run's keyword arguments, by flag.
EXECUTION = ("overwrite", "cluster", "workers", "cluster_config", "cluster_wait", "retries", "resume_failed",
             "allow_code_change", "drop_flags")
# Run-time settings (AnnotateConfig.runtime) by flag: results agree across them.
RUNTIME = {"device": "device", "sam_batch": "batch", "compile_": "compile"}
FLAG_OF_RUNTIME = {"device": "--device", "batch": "--sam-batch", "compile": "--compile"}


@cli.command("run")
@click.option("--dataset", required=True, help="Adapter name (`annotate datasets` lists them).")
@click.option("--root", type=str, default=None, help="Dataset root directory (not needed for `sample`).")
@click.option("--out", type=str, default=None, help="Output store path or fsspec URL [sample: sample.zarr].")
@click.option("--frames-per-video", type=int, default=10, show_default=True,
              help="Frames sampled evenly per video (1..10000).")
@click.option("--sampling", type=str, default=None,
              help="Which frames become rows: even:K [K = --frames-per-video], first:K, every:N, all, or a preset "
                   "(ssdg-train, ssdg-test, cdcn-test, flip-mcio = ssdg-test, flip-wcs); docs/datasets.md.")
@click.option("--landmarker", type=str, default="mediapipe", show_default=True,
              help="Landmarker of the store: mediapipe (FaceMesh, 478 points, CPU) or fan (face-alignment's FAN, 68 "
                   "points, batched on the GPU; weights: --fan-checkpoint); docs/labels.md.")
@click.option("--landmark-check", is_flag=True,
              help="Also run the other landmarker (FAN beside FaceMesh, FaceMesh beside FAN) and fail rows whose "
                   "68 points disagree.")
@click.option("--fan-type", type=click.Choice(["2d", "3d"]), default="2d", show_default=True)
@click.option("--fan-checkpoint", type=str, default=None,
              help="FAN state dict [TORCH_HOME/hub/checkpoints/2DFAN4-11f355bf06.pth.tar or 3DFAN4-7835d9f11d.pth.tar].")
@click.option("--fan-depth-checkpoint", type=str, default=None,
              help="3D FAN's ResNetDepth [TORCH_HOME/hub/checkpoints/depth-2a464da4ea.pth.tar].")
@click.option("--max-landmark-nme", type=float, default=0.1, show_default=True,
              help="--landmark-check: the largest normalised mean error (over the inter-ocular distance) kept.")
@click.option("--size", type=int, default=256, show_default=True,
              help="Side of the square face crop (a multiple of 32 in 32..2048).")
@click.option("--box-scale", type=float, default=1.3, show_default=True, help="Crop side / landmark extent.")
@click.option("--segmenter", type=str, default=None,
              help="Segmenter backend: grabcut (CPU; the instrument of partial attacks), geometry (landmark polygons "
                   "only) or sam (GPU) [grabcut for a new store; a resumed store keeps its own].")
@click.option("--sam-checkpoint", type=str, default=None, help="segment-anything checkpoint file (--segmenter sam).")
@click.option("--sam-model", type=click.Choice(["vit_h", "vit_l", "vit_b"]), default=None,
              help="SAM model type of the checkpoint [vit_h].")
@click.option("--device", type=str, default=None, help="cuda, cuda:N or cpu [cuda when present] (--segmenter sam).")
@click.option("--sam-batch", type=int, default=None, help="Frames per SAM encoder call [8].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the SAM encoder (persistent cache).")
@click.option("--use-dataset-faces", is_flag=True,
              help="Use the face locations a dataset ships (Replay/MSU .face, OULU eye .txt) instead of the detector.")
@click.option("--track/--no-track", default=True, show_default=True,
              help="Follow a video's face from one sampled frame to the next (the detector runs on the first "
                   "frame and when the face is lost) instead of detecting in every frame. --landmarker fan always "
                   "detects in every frame.")
@click.option("--auto-rotate/--no-auto-rotate", default=True, show_default=True,
              help="Turn a sample stored sideways (no rotation metadata; no face, or a face lying on its side "
                   "in its first frame) upright by 90/180/270 degrees; meta/rotation records the turn.")
@click.option("--face-fallback", type=click.Choice(["pose", "none"]), default=None,
              help="Where the face detector finds no face: pose = MediaPipe Holistic places the face from the body "
                   "pose (the face behind a paper strip or glasses; meta/face_source pose); none = no_face "
                   "[pose for a new store; a resumed store keeps its own].")
@click.option("--on-conflict", type=click.Choice(["drop", "first"]), default=None,
              help="An id the dataset's lists put in two groups of one protocol (or a file a manifest lists with "
                   "contradicting lines) is refused as train/test leakage; drop: leave it out; first: keep its "
                   "first group in train, dev, test order (a manifest: its first line). Recorded in the store's config.")
@click.option("--protocol-dir", type=str, default=None,
              help="Folder holding the dataset's protocol lists, when they are not where the adapter looks.")
@click.option("--policy", "policy_file", type=str, default=None, help="TOML file overriding the attack-type policy.")
@click.option("--limit", type=int, default=None, help="Annotate only the first N samples.")
@click.option("--shard-size", type=int, default=None,
              help="Samples per shard, at most 4096 (and 4096 x 256^2 / size^2 for crops over 256 px) "
                   "[from the dataset size].")
@click.option("--cluster", type=click.Choice(["local", "cuda", "slurm", "none"]), default="local", show_default=True,
              help="local: worker processes here; cuda: one worker per GPU (dask-cuda); slurm: workers as SLURM "
                   "jobs (dask-jobqueue, --cluster-config); none: in this process (debugging).")
@click.option("--scheduler", "scheduler_address", type=str, default=None,
              help="Join an existing Dask scheduler at ADDRESS (e.g. tcp://10.0.0.5:8786) instead of --cluster.")
@click.option("--cluster-config", type=str, default=None, help="TOML with [slurm] queue, walltime, cores (1..1024), "
                                                                 "memory, gpus_per_job (0..64), jobs (1..1000) "
                                                                 "(--cluster slurm).")
@click.option("--cluster-wait", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the first SLURM worker job to start (--cluster slurm).")
@click.option("--workers", type=int, default=None,
              help="Local worker processes, at most 4 per core (default: one per core).")
@click.option("--retries", type=int, default=2, show_default=True, help="Retries of a shard that raises.")
@click.option("--max-failure-rate", type=float, default=0.05, show_default=True,
              help="Exit non-zero when more than this share of samples failed (a shard left unwritten always exits 1).")
@click.option("--resume-failed", is_flag=True, help="Retry only the shards recorded as failed.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store instead of resuming it.")
@click.option("--drop-flags", is_flag=True,
              help="With --overwrite: drop the store's label QA flags instead of keeping them (they are kept, matched "
                   "by sample_id, and an overwrite that would lose some is refused).")
@click.option("--allow-code-change", is_flag=True,
              help="Resume a store started by another version of the annotator or other tuning constants "
                   "(recorded in its provenance).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def run(**flags):
    """Annotate a dataset into a label store (resumes an existing store made with the same settings)."""
    setup_logging(flags["verbose"])
    if flags["verbose"] < 2:  # MediaPipe's native log lines would land in the progress bar, from every worker
        from annotator.console import filter_native_stderr

        filter_native_stderr()
    from annotator.config import check_workers
    from pipelines.run import run as run_pipeline

    out = flags["out"] or _default_out(flags["dataset"])
    check_workers(flags["workers"])  # before the config: a bad count is refused before any other work
    if flags["cluster"] == "slurm" and flags["cluster_config"] and not flags["scheduler_address"]:
        from pipelines.cluster import read_slurm_config

        read_slurm_config(flags["cluster_config"])  # its types and counts, before the dataset is enumerated
    if not 0.0 <= flags["max_failure_rate"] <= 1.0:
        raise AnnotatorError(f"--max-failure-rate must be in [0, 1], got {flags['max_failure_rate']}")
    cfg = annotate_config(flags)
    command = " ".join(shlex.quote(a) for a in ["annotate"] + sys.argv[1:])
    summary = run_pipeline(cfg, out, scheduler=flags["scheduler_address"], progress=True, command=command,
                           **{k: flags[k] for k in EXECUTION})
    click.echo(summary.report())
    click.echo(f"store: {out}")
    _exit_status(summary, out, flags["max_failure_rate"])


def _default_out(dataset: str) -> str:
    if dataset != "sample":
        raise AnnotatorError("--out STORE is required (a path or fsspec URL for the label store)")
    return "sample.zarr"


def _exit_status(summary, out: str, max_failure_rate: float) -> None:
    if summary.failed_shards or summary.left:  # the store is unfinished: `verify` would fail it too
        click.echo(f"Error: {out} is unfinished ({len(summary.unwritten) + summary.left} of {summary.n_samples} "
                   "rows not written); rerun the same command to finish it", err=True)
        sys.exit(1)
    if summary.failure_rate > max_failure_rate:
        files = len({f.source for f in summary.failed})
        click.echo(f"Error: {100 * summary.failure_rate:.1f}% of samples failed ({files} of {summary.n_sources} "
                   f"source files), more than --max-failure-rate {100 * max_failure_rate:.1f}%", err=True)
        sys.exit(1)


def annotate_config(flags: dict):
    """The AnnotateConfig of the flags; backend options and run-time settings go to the backends that
    take them (each backend's registration says which), anything else is a one-line error."""
    from annotator.config import AnnotateConfig
    from annotator.label import Policy

    policy = Policy.load(flags["policy_file"]) if flags["policy_file"] else None  # None: shipped or the store's
    options = {k: v for k, v in {"checkpoint": flags["sam_checkpoint"], "model": flags["sam_model"]}.items()
               if v is not None}
    runtime = {key: flags[flag] for flag, key in RUNTIME.items() if flags[flag] not in (None, False)}
    backends = _backends(flags)
    _check_runtime(runtime, backends)
    if any(b.uses_device for b in backends if b.kind == "segmenter"):
        _warn_if_on_cpu(flags["device"])
    return AnnotateConfig(
        dataset=flags["dataset"], root=flags["root"] or "", frames_per_video=flags["frames_per_video"],
        sampling=flags["sampling"] or "", size=flags["size"], box_scale=flags["box_scale"],
        segmenter=flags["segmenter"] or "", limit=flags["limit"], shard_size=flags["shard_size"],
        policy=policy.table if policy else {}, segmenter_options=options, runtime=runtime,
        use_dataset_faces=flags["use_dataset_faces"], track=flags["track"], auto_rotate=flags["auto_rotate"],
        protocol_dir=flags["protocol_dir"] or "", on_conflict=flags["on_conflict"] or "",
        face_fallback={"none": "", None: None}.get(flags["face_fallback"], flags["face_fallback"]),
        landmarker=flags["landmarker"], **_landmark_settings(flags))


def _backends(flags: dict) -> list:
    """The Backend descriptions of the run's segmenter (the default for a new store when not given),
    landmarker and, with --landmark-check, its checker."""
    from annotator.config import DEFAULT_SEGMENTER
    from annotator.face.landmarks import LANDMARKERS
    from annotator.segment import SEGMENTERS

    landmarker = LANDMARKERS.describe(flags["landmarker"])
    out = [SEGMENTERS.describe(flags["segmenter"] or DEFAULT_SEGMENTER), landmarker]
    if flags["landmark_check"]:
        out.append(LANDMARKERS.describe(landmarker.check_with))
    return out


def _check_runtime(runtime: dict, backends: list) -> None:
    """A run-time flag no backend of the run takes is refused, naming the backends that do take it."""
    from annotator.face.landmarks import LANDMARKERS
    from annotator.segment import SEGMENTERS

    for key in runtime:
        if not any(key in b.runtime for b in backends):
            takers = [f"--{r.kind} {n}" for r in (SEGMENTERS, LANDMARKERS) for n in r.names()
                      if key in r.describe(n).runtime]
            raise AnnotatorError(f"{FLAG_OF_RUNTIME[key]} only applies to {' and '.join(takers)}")


def _warn_if_on_cpu(device: str | None) -> None:
    from annotator.segment.sam.segmenter import resolve_device

    if resolve_device(device).type == "cpu":
        click.echo("note: SAM runs on the CPU here (no CUDA device): slow, meant for small jobs", err=True)


def _landmark_settings(flags: dict) -> dict:
    """AnnotateConfig's landmarker_options and landmark_check: the FAN weight flags go to whichever of
    the landmarker and its checker takes options (its backend's `prepare`), checked before any work."""
    from annotator.face.landmarks import LANDMARKERS

    weights = {"checkpoint": flags["fan_checkpoint"], "depth_checkpoint": flags["fan_depth_checkpoint"]}
    fan = {"type": flags["fan_type"], **{k: str(Path(v).resolve()) if v else None for k, v in weights.items()}}
    own = LANDMARKERS.describe(flags["landmarker"])
    checker = LANDMARKERS.describe(own.check_with) if flags["landmark_check"] else None
    if own.prepare:
        check = {"max_nme": flags["max_landmark_nme"]} if checker else {}
        return {"landmarker_options": fan, "landmark_check": check}
    if checker and checker.prepare:
        return {"landmark_check": {**fan, "max_nme": flags["max_landmark_nme"]}}
    if any(weights.values()):
        raise AnnotatorError("--fan-checkpoint and --fan-depth-checkpoint go with --landmarker fan or --landmark-check")
    return {}
