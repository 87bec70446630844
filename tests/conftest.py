import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """A real face: the bundled astronaut photo, HWC uint8 RGB 512x512."""
    return np.asarray(Image.open(SAMPLE / "bonafide" / "astronaut.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def face_landmarks(face_image):
    from annotator.face.detect import BlazeFaceDetector
    from annotator.face.landmarks import FaceMeshLandmarker

    faces = BlazeFaceDetector()(face_image)
    return FaceMeshLandmarker()(face_image, faces[0])


def sync_config(**kw):
    from annotator.config import AnnotateConfig
    from annotator.labels import Policy

    kw.setdefault("policy", Policy.default().table)
    return AnnotateConfig(**kw)


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory):
    """The bundled sample annotated in-process (sync scheduler): (store path, RunSummary)."""
    from pipelines.run import run

    out = str(tmp_path_factory.mktemp("stores") / "sample.zarr")
    summary = run(sync_config(dataset="sample", root=""), out, cluster="none", progress=False)
    return out, summary


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
    from annotator.verify import verify

    return [str(p) for p in verify(url, level).problems]
