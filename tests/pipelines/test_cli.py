import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from annotator.core.samples import Status
from helpers import assert_one_line_error, invoke


def test_bad_inputs_become_status_rows(messy_root, tmp_path):
    out = tmp_path / "messy.zarr"
    r = invoke("run", "--dataset", "folder", "--root", messy_root, "--out", out, "--frames-per-video", 3,
               "--cluster", "none")
    # 6 of 8 rows failed: the store is complete, but the exit code says the run is not usable as is
    assert r.exit_code == 1 and "more than --max-failure-rate 5.0%" in r.output, r.output
    r2 = invoke("run", "--dataset", "folder", "--root", messy_root, "--out", out, "--frames-per-video", 3,
                "--cluster", "none", "--max-failure-rate", "1")
    assert r2.exit_code == 0 and "8 samples in 3 shards (3 already committed)" in r2.output, r2.output
    assert "Traceback" not in r.output
    root = zarr.open_group(str(out), mode="r")
    status = dict(zip(root["meta/source"][:], root["meta/status"][:]))
    assert status["bonafide/a_good.jpg"] == Status.OK
    assert status["bonafide/b_gray.png"] == Status.OK
    assert status["bonafide/c_corrupt.jpg"] == Status.UNREADABLE
    assert status["bonafide/d_noface.png"] == Status.NO_FACE
    assert status["bonafide/e_tiny.png"] == Status.TOO_SMALL
    trunc = [s for src, s in zip(root["meta/source"][:], root["meta/status"][:]) if src.endswith("f_truncated.mp4")]
    assert len(trunc) == 3 and Status.UNREADABLE in trunc
    errors = dict(zip(root["meta/source"][:], root["meta/error"][:]))
    assert "cannot read image" in errors["bonafide/c_corrupt.jpg"]
    assert "failures by status" in r.output and "no_face 1" in r.output
    assert invoke("verify", out).exit_code == 0


def test_one_line_errors(tmp_path, messy_root):
    out = tmp_path / "x.zarr"
    assert_one_line_error(invoke("run", "--dataset", "folder", "--root", tmp_path / "nope", "--out", out),
                          "is not a directory")
    assert_one_line_error(invoke("run", "--dataset", "wmca9", "--root", tmp_path, "--out", out),
                          "unknown dataset 'wmca9'", "folder", "sample")
    assert_one_line_error(invoke("run", "--dataset", "folder", "--out", out), "needs --root")
    assert_one_line_error(invoke("run", "--dataset", "folder", "--root", messy_root), "--out STORE is required")
    assert_one_line_error(invoke("run", "--dataset", "sample", "--out", out, "--size", 100), "multiple of 32")
    assert_one_line_error(invoke("run", "--dataset", "sample", "--out", out, "--segmenter", "magic"),
                          "unknown segmenter 'magic'", "geometry")
    assert_one_line_error(invoke("run", "--dataset", "sample", "--out", out, "--policy", tmp_path / "p.toml"),
                          "does not exist")
    (messy_root / "attack" / "selfie").mkdir()
    assert_one_line_error(invoke("run", "--dataset", "folder", "--root", messy_root, "--out", out),
                          "unknown attack type folder(s) selfie", "print", "replay")
    assert_one_line_error(invoke("inspect", tmp_path / "none.zarr"), "is not a label store")
    for command in (["export", tmp_path / "none.zarr", "--format", "folder", "--out", tmp_path / "ex"],
                    ["augment", tmp_path / "none.zarr", "--out", tmp_path / "aug.zarr"]):
        r = invoke(*command)  # nothing to repair: the store is not there
        assert_one_line_error(r, "none.zarr is not a label store (no zarr.json); create one with `annotate run`")
        assert "repair" not in r.output


def test_existing_output_is_never_clobbered(tmp_path, sample_store):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    r = invoke("run", "--dataset", "sample", "--out", other)
    assert_one_line_error(r, "exists and is not a label store", "--overwrite")
    assert (other / "keep.txt").read_text() == "precious"
    url, _ = sample_store
    copy = tmp_path / "copy.zarr"
    shutil.copytree(url, copy)
    assert_one_line_error(invoke("run", "--dataset", "sample", "--out", copy, "--frames-per-video", 4),
                          "different settings (frames_per_video", "--overwrite")
    assert (copy / "_shards" / "000000.json").exists()


def test_manifest_layout(tmp_path, sample_root):
    root = tmp_path / "m"
    root.mkdir()
    shutil.copy(sample_root / "bonafide" / "astronaut.jpg", root / "real.jpg")
    shutil.copy(sample_root / "attack" / "print" / "print_on_table.jpg", root / "p.jpg")
    (root / "manifest.csv").write_text(
        "path,is_attack,attack_type,subject,split,camera\nreal.jpg,0,,s1,train,webcam\np.jpg,1,print,s1,test,phone\n")
    out = tmp_path / "m.zarr"
    r = invoke("run", "--dataset", "folder", "--root", root, "--out", out, "--cluster", "none")
    assert r.exit_code == 0, r.output
    g = zarr.open_group(str(out), mode="r")
    assert g["meta/split"][:].tolist() == ["train", "test"]
    assert g["meta/camera"][:].tolist() == ["webcam", "phone"]
    assert g["meta/attack_type"][:].tolist() == ["bonafide", "print"]
    assert g["meta/is_attack"][:].tolist() == [False, True]
    (root / "manifest.csv").write_text("path,is_attack,attack_type,subject,split\n../etc/passwd.jpg,0,,s,\n")
    assert_one_line_error(invoke("run", "--dataset", "folder", "--root", root, "--out", tmp_path / "y.zarr"),
                          "without '..'")
    (root / "manifest.csv").write_text("path,is_attack,attack_type,subject,split\nreal.jpg,1,hologram,s,\n")
    assert_one_line_error(invoke("run", "--dataset", "folder", "--root", root, "--out", tmp_path / "y.zarr"),
                          "unknown attack type 'hologram'")


def test_inspect_preview_verify_console_script(sample_store, tmp_path):
    url, _ = sample_store
    exe = [str(Path(sys.executable).with_name("annotate"))]  # the installed console script
    r = subprocess.run(exe + ["inspect", url], capture_output=True, text=True, check=True)
    assert "15 samples" in r.stdout and "bonafide 12" in r.stdout and "ok 15" in r.stdout
    assert '"segmenter": "geometry"' in r.stdout
    png = tmp_path / "sheet.png"
    r = subprocess.run(exe + ["preview", url, "--out", str(png), "--n", "4"], capture_output=True, text=True, check=True)
    sheet = np.asarray(Image.open(png))
    assert sheet.shape[0] == 18 + 4 * 128 + 14 and sheet.shape[1] == 170 + 6 * 128
    r = subprocess.run(exe + ["verify", url], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout


def test_preview_shows_the_attack_channel(sample_store, tmp_path):
    from annotator.serve.preview import contact_sheet

    url, _ = sample_store
    png = tmp_path / "s.png"
    rows = contact_sheet(url, str(png), n=15)
    sheet = np.asarray(Image.open(png).convert("L")).astype(int)
    types = zarr.open_group(url)["meta/attack_type"][:]
    for r, t in enumerate(types):
        attack_tile = sheet[18 + r * 128: 18 + (r + 1) * 128, 170 + 128: 170 + 256]
        assert (attack_tile.sum() > 0) == (t != "bonafide"), (r, t)
    assert rows == 15


def test_datasets_lists_adapters():
    r = invoke("datasets")
    assert r.exit_code == 0 and "folder" in r.output and "manifest.csv" in r.output and "sample" in r.output


def test_a_bad_setting_is_named_by_its_field_in_the_library_and_by_its_flag_in_the_cli(tmp_path):
    from annotator.core.errors import SettingError
    from helpers import sync_config

    with pytest.raises(SettingError, match=r"^frames_per_video must be at least 1, got 0$"):
        sync_config(dataset="sample", root="", frames_per_video=0).validate()
    r = invoke("run", "--dataset", "sample", "--out", tmp_path / "x.zarr", "--frames-per-video", 0)
    assert_one_line_error(r, "Error: --frames-per-video must be at least 1, got 0")
    assert not (tmp_path / "x.zarr").exists()
