"""The `annotate` command: parse, validate, call the libraries. Every user error is one line (click's 'Error: ...')."""

from __future__ import annotations

import json
import logging
import shlex
import sys

import click

from annotator.errors import AnnotatorError
from annotator.samples import Status

from .errors import OneLineErrors


@click.group(cls=OneLineErrors)
@click.version_option(package_name="fas-annotator")
def cli():
    """Fine-grained face anti-spoofing labels: annotate datasets into Zarr label stores."""


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--dataset", required=True, help="Adapter name (`annotate datasets` lists them).")
@click.option("--root", type=str, default=None, help="Dataset root directory (not needed for `sample`).")
@click.option("--out", type=str, default=None, help="Output store path or fsspec URL [sample: sample.zarr].")
@click.option("--frames-per-video", type=int, default=10, show_default=True,
              help="Frames sampled evenly per video (1..10000).")
@click.option("--sampling", type=str, default=None,
              help="Which frames become rows: even:K [K = --frames-per-video], first:K, every:N, all, or a preset "
                   "(ssdg-train, ssdg-test, cdcn-test); docs/datasets.md.")
@click.option("--landmarker", type=click.Choice(["mediapipe", "fan"]), default="mediapipe", show_default=True,
              help="Landmarks of the store: MediaPipe FaceMesh (478 points, CPU) or face-alignment's FAN (68 points, "
                   "batched on the GPU; weights: --fan-checkpoint); docs/labels.md.")
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
def run(dataset, root, out, frames_per_video, sampling, landmarker, landmark_check, fan_type, fan_checkpoint, fan_depth_checkpoint,
        max_landmark_nme, size, box_scale, segmenter, sam_checkpoint, sam_model, device,
        sam_batch, compile_, use_dataset_faces, track, auto_rotate, face_fallback, on_conflict, protocol_dir, policy_file, limit, shard_size, cluster, scheduler_address, cluster_config, cluster_wait, workers,
        retries, max_failure_rate, resume_failed, overwrite, drop_flags, allow_code_change, verbose):
    """Annotate a dataset into a label store (resumes an existing store made with the same settings)."""
    _setup_logging(verbose)
    if verbose < 2:  # MediaPipe's native log lines would land in the progress bar, from every worker
        from .quiet import filter_native_stderr

        filter_native_stderr()
    from annotator.config import AnnotateConfig, check_workers
    from annotator.labels import Policy
    from pipelines.run import run as run_pipeline

    if out is None:
        if dataset != "sample":
            raise AnnotatorError("--out STORE is required (a path or fsspec URL for the label store)")
        out = "sample.zarr"
    check_workers(workers)  # before the config: a bad count is refused before any other work
    if cluster == "slurm" and cluster_config and not scheduler_address:
        from pipelines.cluster import read_slurm_config

        read_slurm_config(cluster_config)  # its types and counts, before the dataset is enumerated
    policy = Policy.load(policy_file) if policy_file else None  # None: the shipped one, or a resumed store's
    options = {k: v for k, v in {"checkpoint": sam_checkpoint, "model": sam_model}.items() if v is not None}
    runtime = {k: v for k, v in {"device": device, "batch": sam_batch, "compile": compile_ or None}.items()
               if v is not None}
    if (sam_batch is not None or compile_) and segmenter != "sam":
        raise AnnotatorError("--sam-batch and --compile only apply to --segmenter sam")
    if device is not None and segmenter != "sam" and landmarker != "fan" and not landmark_check:
        raise AnnotatorError("--device only applies to --segmenter sam and FAN (--landmarker fan or --landmark-check)")
    if segmenter == "sam":
        _warn_if_sam_on_cpu(device)
    cfg = AnnotateConfig(dataset=dataset, root=root or "", frames_per_video=frames_per_video,
                         sampling=sampling or "", size=size,
                         box_scale=box_scale, segmenter=segmenter or "", limit=limit, shard_size=shard_size,
                         policy=policy.table if policy else {}, segmenter_options=options, runtime=runtime,
                         use_dataset_faces=use_dataset_faces, track=track, auto_rotate=auto_rotate,
                         protocol_dir=protocol_dir or "", on_conflict=on_conflict or "",
                         face_fallback={"none": "", None: None}.get(face_fallback, face_fallback),
                         landmarker=landmarker,
                         **_fan_settings(landmarker, landmark_check, fan_type, fan_checkpoint, fan_depth_checkpoint,
                                         max_landmark_nme))
    command = " ".join(shlex.quote(a) for a in ["annotate"] + sys.argv[1:])
    if not 0.0 <= max_failure_rate <= 1.0:
        raise AnnotatorError(f"--max-failure-rate must be in [0, 1], got {max_failure_rate}")
    summary = run_pipeline(cfg, out, overwrite=overwrite, cluster=cluster, workers=workers,
                           scheduler=scheduler_address, cluster_config=cluster_config, retries=retries,
                           resume_failed=resume_failed, progress=True, command=command,
                           allow_code_change=allow_code_change, cluster_wait=cluster_wait, drop_flags=drop_flags)
    click.echo(summary.report())
    click.echo(f"store: {out}")
    if summary.failed_shards or summary.left:  # the store is unfinished: `verify` would fail it too
        click.echo(f"Error: {out} is unfinished ({len(summary.unwritten) + summary.left} of {summary.n_samples} "
                   "rows not written); rerun the same command to finish it", err=True)
        sys.exit(1)
    if summary.failure_rate > max_failure_rate:
        files = len({f.source for f in summary.failed})
        click.echo(f"Error: {100 * summary.failure_rate:.1f}% of samples failed ({files} of {summary.n_sources} "
                   f"source files), more than --max-failure-rate {100 * max_failure_rate:.1f}%", err=True)
        sys.exit(1)


def _warn_if_sam_on_cpu(device: str | None) -> None:
    from annotator.segment.sam.segmenter import resolve_device

    if resolve_device(device).type == "cpu":
        click.echo("note: SAM runs on the CPU here (no CUDA device): slow, meant for small jobs", err=True)


@cli.command()
@click.argument("store_url")
@click.option("--failures", is_flag=True, help="List every failed row: source, frame, status, error.")
@click.option("--json", "as_json", is_flag=True, help="With --failures: print the rows as a JSON list.")
def inspect(store_url, failures, as_json):
    """Counts by split, attack type and status (rows of uncommitted shards as pending), failures per
    source file, protocols and provenance; exits 1 when the store's metadata is damaged."""
    from annotator.contents import read_contents

    if as_json and not failures:
        raise AnnotatorError("--json goes with --failures")
    contents = read_contents(store_url)
    if failures:
        rows = contents.failed()
        if as_json:
            click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        else:
            for r in rows:
                click.echo(f"{r.source}\t{r.frame_index}\t{Status(r.status).name.lower()}\t{r.error}")
    else:
        click.echo(contents.text())
    if contents.problems:
        sys.exit(1)


@cli.command()
@click.argument("store_url")
@click.option("--out", required=True, help="PNG file to write.")
@click.option("--n", type=click.IntRange(min=1), default=16, show_default=True, help="Rows (samples) to draw.")
def preview(store_url, out, n):
    """Write a contact sheet: one row per sample - image, attack, live, background, depth, regions."""
    from annotator.places import require_writable
    from annotator.preview import contact_sheet
    from annotator.verify import require_sound

    if not out.lower().endswith(".png"):
        raise AnnotatorError(f"--out must be a .png file, got {out}")
    require_writable(out, "--out", parent_must_exist=True)
    require_sound(store_url, "metadata", "run `annotate verify` on it", allow_pending=True)
    rows = contact_sheet(store_url, out, n)
    click.echo(f"wrote {out} ({rows} samples)")


@cli.command()
@click.argument("store_url")
@click.option("--quick", is_flag=True, help="Only metadata and the label contract (labels, pyramids, landmarks).")
@click.option("--repair", "do_repair", is_flag=True,
              help="Reopen the shards with damaged chunks and mend metadata, so that rerunning the store's "
                   "`annotate run` command re-annotates exactly those shards.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Reading threads [4].")
@click.option("--scheduler", "scheduler_address", type=str, default=None,
              help="Read chunks as tasks of the Dask scheduler at ADDRESS instead of local threads.")
def verify(store_url, quick, do_repair, workers, scheduler_address):
    """Check the store as it is on storage: every node's metadata, every chunk of the committed shards
    decoded and its values checked. Exits 1 listing the problems, one line each."""
    from annotator.places import normalize
    from annotator.verify import verify as check

    url = normalize(store_url)
    level = "quick" if quick else "full"
    if scheduler_address:
        from pipelines.cluster import connect  # an unreachable address is a one-line error there

        with connect(scheduler_address) as client:
            report = check(url, level, workers, client=client, progress=True)
    else:
        report = check(url, level, workers, progress=True)
    for p in report.problems:
        click.echo(f"problem: {p}", err=True)
    if not report.problems:
        click.echo(f"{store_url}: ok ({level})")
        return
    click.echo(f"{store_url}: {len(report.problems)} problem(s)", err=True)
    if do_repair:
        _repair(report)
    elif any(p.action not in ("", "rerun") for p in report.problems):
        click.echo(f"`annotate verify {store_url} --repair` reopens what a rerun can mend", err=True)
    sys.exit(1)


def _repair(report) -> None:
    from annotator.places import require_writable
    from annotator.verify import repair, rerun_command
    from pipelines.lock import StoreLock

    if report.layout is None:  # nothing readable to mend
        click.echo("no rerun can mend this store: see what the problem says to do", err=True)
        return
    require_writable(report.layout.url, "--repair: the store")
    with StoreLock(report.layout.url):
        result = repair(report)
    for line in result.done:
        click.echo(f"repaired: {line}", err=True)
    if result.reopened:
        click.echo(f"reopened {len(result.reopened)} shard(s): {', '.join(map(str, result.reopened))}", err=True)
    if result.reopened or any(p.action == "rerun" for p in report.problems):
        click.echo("now rerun the command that made the store; it re-annotates only the uncommitted shards:\n  "
                   + rerun_command(report.layout), err=True)
    if result.left:
        click.echo(f"{len(result.left)} problem(s) no rerun can mend: see what each line above says to do", err=True)


@cli.command()
@click.argument("store_url")
@click.option("--out", required=True, help="The augmented store to write.")
@click.option("--gamma", type=float, default=0.5, show_default=True,
              help="Share of each batch that is augmented, in [0, 1].")
@click.option("--rho", type=int, default=1, show_default=True,
              help="Exchange steps (regions taken) per augmented sample, 0..5: eyes, brows, nose, mouth, skin.")
@click.option("--scheme", type=str, default="integrated", show_default=True,
              help="integrated (donor shape), overlay (covers the recipient's region), clipping (clipped to it).")
@click.option("--copies", type=int, default=1, show_default=True, help="Augmented copies of the store (1..1000).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same store).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out store.")
def augment(store_url, out, gamma, rho, scheme, copies, seed, overwrite):
    """MCREA (Fine-grained annotation, Algorithm 1): exchange aligned face regions between samples into a new store."""
    from annotator.augment.store import augment_store

    res = augment_store(store_url, out, gamma, rho, scheme, copies, seed, overwrite)
    click.echo(f"wrote {out}: {res['rows']} rows, {res['augmented']} augmented with {res['exchanges']} exchanges")


def _fan_settings(landmarker: str, check: bool, kind: str, checkpoint: str | None, depth: str | None,
                  max_nme: float) -> dict:
    """AnnotateConfig's landmarker_options and landmark_check from the flags; FAN's weights go to
    whichever of the two runs FAN. Checked before any work by the run."""
    from pathlib import Path

    fan = {"type": kind, "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
           "depth_checkpoint": str(Path(depth).resolve()) if depth else None}
    if landmarker != "fan" and not check:
        if checkpoint or depth:
            raise AnnotatorError("--fan-checkpoint and --fan-depth-checkpoint go with --landmarker fan or --landmark-check")
        return {}
    if landmarker == "fan":
        return {"landmarker_options": fan, "landmark_check": {"max_nme": max_nme} if check else {}}
    return {"landmark_check": {**fan, "max_nme": max_nme}}


@cli.command()
@click.argument("store_url")
@click.option("--port", type=int, default=8765, show_default=True,
              help="TCP port to listen on: 1 .. 65535 (checked before the store is read).")
@click.option("--host", type=str, default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this machine's loopback makes the page reachable by others.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A host name browsers may use to reach the page, besides loopback and --host (repeatable; "
                   "required with --host 0.0.0.0 or ::). Other names are refused (DNS rebinding).")
@click.option("--allow-flags", is_flag=True, help="Let the page flag samples bad / good (writes the store's qa/ group).")
def serve(store_url, port, host, allowed_hosts, allow_flags):
    """Browse and audit a store in the browser: thumbnails, overlays, sample view, flags (docs/serve.md)."""
    from annotator.serve import serve as run_server

    run_server(store_url, host, port, allow_flags, allowed_hosts=allowed_hosts)


@cli.command()
@click.argument("store_url")
@click.option("--format", "fmt", required=True, help="cdcn, ssdg, ssan or folder (docs/exports.md).")
@click.option("--out", required=True, help="The export folder (a rerun with the same settings resumes).")
@click.option("--protocol", type=str, default="split", show_default=True,
              help="The groups to export: protocols/<name>, `split` (meta/split) or `all`.")
@click.option("--workers", type=int, default=None,
              help="Threads writing shards, at most 4 per core [the CPU count]. One export writes a folder "
                   "at a time (.export/lock.json).")
def export(store_url, fmt, out, protocol, workers):
    """Write a store as the folder layout another codebase reads (CDCN, SSDG, SSAN, plain PNGs)."""
    from annotator.export import export_store

    res = export_store(store_url, fmt, out, protocol, workers)
    groups = ", ".join(f"{g} {n}" for g, n in res["groups"].items())
    resumed = f", {res['resumed']} of {res['shards']} shards already done" if res["resumed"] else ""
    click.echo(f"wrote {out}: {res['rows']} rows ({groups}) as {fmt}{resumed}; see {out}/README.md")


@cli.command()
@click.argument("store_url")
@click.option("--dataset", required=True, help="Adapter the store was made with.")
@click.option("--root", type=str, default=None, help="Dataset root [the one the store was made from].")
@click.option("--protocol-dir", type=str, default=None, help="Folder holding the protocol lists.")
@click.option("--on-conflict", type=click.Choice(["drop", "first"]), default=None,
              help="Ids in two groups of one protocol: drop, or first (train before dev before test) [the store's setting].")
def protocols(store_url, dataset, root, protocol_dir, on_conflict):
    """(Re)write a finished store's protocols and per-row list fields (split, subject, the adapter's
    extra columns) from the dataset's lists; decodes nothing."""
    from pipelines.protocols import rewrite_protocols

    click.echo(rewrite_protocols(store_url, dataset, root, protocol_dir, on_conflict).report())


@cli.command("check-dataset")
@click.option("--dataset", required=True, help="Adapter name (`annotate datasets` lists them).")
@click.option("--root", type=str, default=None, help="Dataset root directory.")
@click.option("--protocol-dir", type=str, default=None, help="Folder holding the protocol lists.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Header probes in flight [2 per core].")
def check_dataset(dataset, root, protocol_dir, as_json, workers):
    """Report files per split and type, list/disk mismatches, subjects across train and test,
    unreadable headers and unparsable names; exit 1 when any of those (not unused media) is found."""
    from annotator.check import check_dataset as check
    from annotator.datasets import DATASETS

    adapter = DATASETS.create(dataset, root=root, protocol_dir=protocol_dir, strict=False)
    report = check(adapter, workers=workers)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    if report.problems:
        sys.exit(1)


@cli.command()
def datasets():
    """List the dataset adapters and the layout each expects."""
    from annotator.datasets import DATASETS

    for name in DATASETS.names():
        click.echo(f"{name}\n    {DATASETS.get(name).description}\n")


def main() -> None:
    cli(prog_name="annotate")
