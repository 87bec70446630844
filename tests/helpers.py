"""Helpers the tests share: config builders, the video writer, a tiny SAM, verify's problem lines."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "annotator/datasets/sample_data"


def sync_config(**kw):
    from annotator.config import AnnotateConfig
    from annotator.label import Policy

    kw.setdefault("policy", Policy.default().table)
    kw.setdefault("segmenter", "geometry")  # the reference most tests compare with; the default's own tests set it
    return AnnotateConfig(**kw)


def write_video(path, frames, rate: int = 25, rotation: int | None = None, options: dict | None = None,
                matrix: list[int] | None = None) -> None:
    """Encode HWC uint8 RGB frames (an iterable, all one size) as H.264 at `path`; `rotation`: the
    display matrix's rotation (degrees anticlockwise, as PyAV's set_display_rotation takes it);
    `matrix`: a whole display matrix instead (nine integers, FFmpeg's layout)."""
    import av

    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        if options:
            s.options = options
        if rotation is not None:
            s.set_display_rotation(rotation)
        if matrix is not None:
            s.set_display_matrix(matrix)
        for f in (first, *frames):
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def tiny_sam(img_size: int = 256, seed: int = 0):
    """A small segment-anything model with random weights: the real modules at toy width."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim, emb = 32, img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=img_size, patch_size=16, embed_dim=48, depth=2, num_heads=2,
                                      mlp_ratio=2, out_chans=dim, qkv_bias=True, use_rel_pos=True,
                                      rel_pos_zero_init=False, window_size=4, global_attn_indexes=(1,),
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(emb, emb),
                                     input_image_size=(img_size, img_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=2,
                                 iou_head_hidden_dim=32,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2)),
    )
    for name, p in sam.named_parameters():
        if "rel_pos" in name:
            torch.nn.init.normal_(p, std=0.5)  # zero-initialised in SAM; random here so the term matters
    return sam.eval()


def problems(url: str, level: str = "full") -> list[str]:
    """`annotate verify`'s problem lines for the store at url."""
    from annotator.store.verify import verify

    return [str(p) for p in verify(url, level).problems]


def assert_same_store(a_url, b_url) -> None:
    """Every array of two stores (arrays, meta columns, protocols, coordinates) equal, and b verifies."""
    import zarr

    a, b = zarr.open_group(str(a_url), mode="r"), zarr.open_group(str(b_url), mode="r")
    names = sorted(k for k, v in a.members(max_depth=None) if isinstance(v, zarr.Array))
    assert names == sorted(k for k, v in b.members(max_depth=None) if isinstance(v, zarr.Array))
    for k in names:
        x, y = a[k][:], b[k][:]
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    assert problems(str(b_url)) == []


@contextlib.contextmanager
def read_only(*folders):
    """Folders nobody may create or delete entries in: mode bits, or for root (who ignores them) the
    immutable attribute, which binds root too; skip only when neither can be set."""
    if os.geteuid() != 0:
        for f in folders:
            f.chmod(0o555)
        try:
            yield
        finally:
            for f in folders:
                f.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", *map(str, folders)],
                                                    capture_output=True).returncode:
        pytest.skip("running as root on a filesystem without the immutable attribute: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, folders)], check=True)


def invoke(*args):
    """`annotate ARGS` in-process (click's runner); each arg as text."""
    from click.testing import CliRunner

    from pipelines.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0]


@contextlib.contextmanager
def registered(*entries):
    """Backends registered for the block, then taken out: (registry, name, factory, traits dict) each."""
    for registry, name, factory, traits in entries:
        registry.register(name, **traits)(factory)
    try:
        yield
    finally:
        for registry, name, _, _ in entries:
            registry.unregister(name)
