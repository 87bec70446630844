"""Quality signals (annotator/label/quality.py): exact values on constructed maps, and a run in which
a video whose labels flicker between frames ranks first in `annotate inspect`."""

import shutil

import numpy as np
import pytest
import zarr

from annotator.face.priors import compose, region_priors
from annotator.face.regions import Region
from annotator.label import box_iou, channel_shares, prior_agreement, temporal_consistency
from annotator.segment import SEGMENTERS
from annotator.store.contents import read_contents
from helpers import SAMPLE, registered, sync_config


def test_channel_shares_count_set_pixels():
    label = np.zeros((3, 10, 10), np.uint8)
    label[0, :2] = 255  # 20 pixels
    label[1, 2:7] = 9  # 50 pixels
    label[2, 7:] = 1  # 30 pixels
    assert channel_shares(label).tolist() == pytest.approx([0.2, 0.5, 0.3])


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_prior_agreement_is_one_on_the_prior_and_names_the_region_that_moved(face_landmarks):
    size = 256
    prior = compose(region_priors(face_landmarks, size), size)
    assert prior_agreement(prior, face_landmarks) == (1.0, "skin")
    moved = prior.copy()
    eyes = prior == Region.EYES
    moved[eyes] = Region.SKIN
    moved[np.roll(eyes, 12, axis=0)] = Region.EYES
    value, region = prior_agreement(moved, face_landmarks)
    expected = np.count_nonzero(eyes & np.roll(eyes, 12, axis=0)) / np.count_nonzero(eyes | np.roll(eyes, 12, axis=0))
    assert region == "eyes" and value == pytest.approx(expected)
    # an occluder over the eyes is the instrument's, not a cut of the face that disagrees
    covered = prior.copy()
    covered[eyes] = Region.OCCLUDER
    assert prior_agreement(covered, face_landmarks)[0] > 0.99


def test_temporal_consistency_follows_the_face_and_catches_a_flip():
    size = 64
    region = np.zeros((size, size), np.uint8)
    region[16:48, 20:44] = Region.SKIN
    region[24:28, 24:40] = Region.EYES
    lm = np.array([[20, 16, 0], [44, 16, 0], [44, 48, 0], [20, 48, 0], [32, 26, 0]], np.float32)
    shifted, lm_shifted = np.roll(region, 6, axis=1), lm + np.array([6, 0, 0], np.float32)
    moving = temporal_consistency(np.stack([region, shifted, region]), np.stack([lm, lm_shifted, lm]))
    assert moving.tolist() == [1.0, 1.0, 1.0]  # the face moved, the labels moved with it
    flipped = np.roll(region, 16, axis=0)  # the labels jump, the landmarks stay
    jumpy = temporal_consistency(np.stack([region, flipped, region, region]), np.stack([lm] * 4))
    assert jumpy[3] == 1.0 and (jumpy[:3] < 0.3).all()
    assert np.isnan(temporal_consistency(region[None], lm[None])).all()


class Flicker:
    """The landmark polygons, with every other replay frame's map moved by a quarter of the crop."""

    name = "flicker"

    def segment(self, items):
        out, replays = [], 0
        for item in items:
            region = compose(region_priors(item.landmarks, item.size), item.size)
            if item.attack_type == "replay":
                if replays % 2:
                    region = np.roll(region, item.size // 4, axis=0)
                replays += 1
            out.append((region, self.name))
        return out


def test_a_video_whose_labels_flicker_ranks_first(tmp_path):
    from pipelines.run import run

    root = tmp_path / "two_videos"
    for folder in ("bonafide", "attack/replay"):
        (root / folder).mkdir(parents=True)
    shutil.copy(SAMPLE / "bonafide" / "astronaut_pan.mp4", root / "bonafide" / "steady.mp4")
    shutil.copy(SAMPLE / "bonafide" / "astronaut_pan.mp4", root / "attack" / "replay" / "flicker.mp4")
    out = str(tmp_path / "q.zarr")
    with registered((SEGMENTERS, "test-flicker", Flicker, {})):
        run(sync_config(dataset="folder", root=str(root), segmenter="test-flicker", frames_per_video=6), out,
            cluster="none", progress=False)
    store = zarr.open_group(out, mode="r")
    ids, tc = store["meta/sample_id"][:], store["meta/temporal_consistency"][:]
    steady = np.array([s.startswith("bonafide/") for s in ids])
    assert (store["meta/status"][:] == 0).sum() == 12 and np.isfinite(tc).all()
    assert tc[steady].min() > 0.8 and tc[~steady].max() < 0.5
    lowest = next(l for l in read_contents(out).text().splitlines() if l.startswith("lowest temporal_consistency"))
    listed = lowest.split(": ", 1)[1].split(", ")
    assert len(listed) == 5 and all(item.startswith("attack/replay/flicker.mp4#") for item in listed)
