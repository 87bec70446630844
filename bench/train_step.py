"""Training steps/s and peak memory of a model (default dccdn3, the three-channel DC-CDN of
Fine-grained annotation; `--model all`: every registered model, each in its own process so that its
peak memory is its own) at 256x256.

One step = to_inputs (uint8 store layout -> float, crop and colour augmentation) + forward + the
eq. 3 loss + backward + Adam, as `fas-train train` runs it (bf16 autocast on CUDA, fp32 on CPU).
Baseline in the same run (--baseline, default on CUDA): the same network with theta = 0, i.e.
plain convolutions of the same shapes, which shows what the central-difference term costs.

    .venv/bin/python bench/train_step.py [--model NAME|all] [--batch 32] [--size 256] [--width 1.0] [--steps N]
                                         [--device cuda] [--video [--frames 8] [--video-batch 6]]

--video (ccdd): the image step, then a video-branch step on --video-batch sequences of --frames
frames (the paper's 6 x 8), compared with the image step in frames/s.

On CPU the defaults are --steps 1 --warmup 0 and no baseline: full-width dccdn3 is ~330 GFLOP
per 256x256 image forward and holds ~1.1 GB of activations per image for backward, so batch 32
needs ~35 GB of RAM (the 2-core, 23 GB VM of the README measures --batch 8: 153 s/step).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def step_time(model, batch: dict, device: torch.device, steps: int, warmup: int, video: bool = False) -> float:
    """Seconds per training step; video: a video-branch step (forward_video + video_loss) on a batch
    of whole sequences, the augmentation drawn per sequence."""
    from fas_train.inputs import Augment, to_inputs

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    cast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
            else torch.autocast("cpu", enabled=False))
    gen = torch.Generator().manual_seed(0)

    def one():
        x = to_inputs(batch, device, augment=Augment(), generator=gen, group=model.frames if video else 1)
        with cast:
            out = model.forward_video(x["image"]) if video else model(x["image"])
        loss, _ = (model.video_loss if video else model.loss)(out.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def synthetic_batch(model, b: int, s: int) -> dict:
    """Store-layout uint8 fields the model trains on (random), half of the rows attacks."""
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8, generator=g),
             "is_attack": torch.arange(b) % 2 == 1, "domain": torch.zeros(b, dtype=torch.int64),
             "attack_code": torch.zeros(b, dtype=torch.int64)}
    for f in model.train_needs:
        if f == "label":
            batch[f] = torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=g)
        elif f == "region":
            batch[f] = torch.randint(0, 6, (b, s, s), dtype=torch.uint8, generator=g)
        elif f.startswith("pyramid/"):
            k = int(f.split("/")[1])
            batch[f] = torch.randint(0, 256, (b, 3, k, k), dtype=torch.uint8, generator=g)
    return batch


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dccdn3", help="a registered model, or `all` (one process each)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--video", action="store_true",
                    help="ccdd: also time a video-branch step (--video-batch sequences of --frames frames) beside "
                         "the image step")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--video-batch", type=int, default=6)
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                    help="also time the central-difference models with theta 0 (plain convolutions)")
    args = ap.parse_args()
    from fas_train.models import MODELS, create

    if args.model == "all":
        import subprocess

        rest = [a for a in sys.argv[1:] if a not in ("--model", "all")]
        for name in MODELS.names():
            subprocess.run([sys.executable, __file__, "--model", name, *rest], check=False)
        return
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    steps = args.steps or (20 if gpu else 1)
    warmup = args.warmup if args.warmup is not None else (3 if gpu else 0)
    baseline = args.baseline if args.baseline is not None else gpu
    b, s = args.batch, args.size
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} width {args.width}, batch {b}, {s}x{s}, {where}, {steps} timed step(s) after {warmup} warm-up")
    cdc = args.model in ("cdcn", "cdcnpp", "cdcn_ps", "dccdn3")
    runs = [(args.model, {})] + ([("baseline: plain convs (theta 0)", {"theta": 0.0})] if baseline and cdc else [])
    if args.video:
        if args.model != "ccdd":
            sys.exit("--video applies to --model ccdd")
        runs = [("image step", {"video": True, "frames": args.frames, "video_batch": args.video_batch})]
    for label, kw in runs:
        torch.manual_seed(0)
        model = create(args.model, width=args.width, **kw).to(device).train()
        sec = step_time(model, synthetic_batch(model, b, s), device, steps, warmup)
        print(f"  {label:32s} {sec:9.3f} s/step  {b / sec:9.1f} samples/s  peak {peak_memory_gb(device):6.2f} GB "
              f"({'allocated' if gpu else 'resident'})")
    if args.video:  # the video step, against the image step above as the baseline of the same run
        n = args.video_batch * args.frames
        vbatch = synthetic_batch(model, n, s)
        vbatch["is_attack"] = (torch.arange(n) // args.frames) % 2 == 1  # half of the sequences attacks
        sec_v = step_time(model, vbatch, device, steps, warmup, video=True)
        print(f"  {f'video step ({args.video_batch} x {args.frames} frames)':32s} {sec_v:9.3f} s/step  "
              f"{args.video_batch / sec_v:9.1f} sequences/s  {n / sec_v:9.1f} frames/s ({n / sec_v / (b / sec):.2f}x "
              f"the image step's samples/s)  peak {peak_memory_gb(device):6.2f} GB")


if __name__ == "__main__":
    main()
