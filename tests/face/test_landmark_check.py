"""--landmark-check: FAN's 68 points against FaceMesh's, per row (meta/landmark_nme, status)."""

import numpy as np
import pytest
import zarr
from helpers import SAMPLE, sync_config

from annotator.config import AnnotateConfig
from annotator.face.points68 import mesh_to_68
from annotator.core.samples import Status


class AgreeingFan:
    """A stand-in for FanLandmarker: FaceMesh's own points (mapped to 68, back in frame pixels),
    shifted by `shift` inter-ocular distances for the faces whose index is in `shifted`."""

    def __init__(self, items_mesh, shifted=(), shift=0.3):
        self.items_mesh, self.shifted, self.shift = items_mesh, set(shifted), shift

    def landmarks(self, pairs):
        out = []
        for k, ((frame, box), (m, mesh)) in enumerate(zip(pairs, self.items_mesh)):
            p68 = mesh_to_68(mesh)[:, :2]
            inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # crop -> frame pixels
            pts = p68 @ inv[:, :2].T + inv[:, 2]
            if k in self.shifted:
                iod = np.linalg.norm(pts[36] - pts[45])
                pts = pts + [self.shift * iod, 0]
            out.append(np.concatenate([pts, np.zeros((68, 1))], axis=1).astype(np.float32))
        return out


def _cropped(n=3):
    from annotator.datasets.base import refs_for_file
    from annotator.shard import Models, crop_faces
    from annotator.face import DETECTORS, LANDMARKERS

    cfg = AnnotateConfig(dataset="sample", root="")
    refs = [r for name in ("astronaut.jpg", "astronaut_room.jpg") for r in
            refs_for_file(SAMPLE / "bonafide" / name, SAMPLE, 10, is_attack=False, attack_type="bonafide",
                          dataset="sample")]
    refs += [r for r in refs_for_file(SAMPLE / "attack" / "print" / "print_on_table.jpg", SAMPLE, 10, is_attack=True,
                                      attack_type="print", dataset="sample")]
    models = Models(DETECTORS.create("blazeface"), LANDMARKERS.create("mediapipe"), None, None)
    return crop_faces(refs[:n], cfg, models)


def test_a_shifted_face_fails_and_the_agreeing_ones_pass():
    from annotator.shard import check_landmarks

    rows = _cropped()
    assert rows.faced == [0, 1, 2]
    fake = AgreeingFan([(it.crop_matrix, it.landmarks) for it in rows.items], shifted=[1])
    check_landmarks(rows, fake, max_nme=0.1)
    nme = np.array(rows.meta["landmark_nme"], dtype=float)
    assert nme[0] < 1e-3 and nme[2] < 1e-3 and nme[1] == pytest.approx(0.3, rel=0.02)
    assert rows.meta["status"] == [0, int(Status.LANDMARK_DISAGREEMENT), 0]
    assert "NME 0.300 > 0.1" in rows.meta["error"][1]
    assert rows.faced == [0, 2] and (rows.arrays["image"][1] == 0).all() and np.isnan(rows.arrays["landmarks"][1]).all()


def test_a_run_checks_with_fan_and_records_its_weights(tmp_path, fan_weights):
    from annotator.store.contents import read_contents
    from annotator.face.fan import sha256
    from annotator.store.verify import verify
    from pipelines.run import run

    weights = fan_weights
    out = str(tmp_path / "s.zarr")
    cfg = sync_config(dataset="sample", root="", limit=2,
                      landmark_check={"type": "2d", "checkpoint": str(weights), "max_nme": 100.0})
    run(cfg, out, cluster="none", progress=False)
    root = zarr.open_group(out, mode="r")
    lc = root.attrs["config"]["landmark_check"]
    assert lc["sha256"] == sha256(weights) and lc["max_nme"] == 100.0
    nme = root["meta/landmark_nme"][:]
    assert np.isfinite(nme[root["meta/status"][:] == 0]).all() and len(nme) == 2
    assert "landmark NME, FAN vs FaceMesh (2 rows)" in read_contents(out).text()
    assert verify(out, "full").problems == []


def test_bad_fan_settings_fail_before_any_work(tmp_path):
    from click.testing import CliRunner

    from pipelines.cli import cli

    out = tmp_path / "x.zarr"
    for args, message in ((["--landmark-check", "--fan-checkpoint", str(tmp_path / "none.pth.tar")],
                           "--fan-checkpoint 2DFAN4-11f355bf06.pth.tar is not at"),
                          (["--fan-checkpoint", "w.pth"], "go with --landmarker fan or --landmark-check"),
                          (["--landmark-check", "--max-landmark-nme", "0"], "--max-landmark-nme must be positive")):
        r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "none", *args])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
        assert not out.exists()
