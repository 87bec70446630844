"""The distribution as a user installs it: a wheel built from this tree, installed into a venv outside
the repository, holding only its own top-level names and the sample data, runs `annotate run --dataset
sample` and `annotate verify` from another directory."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import zarr

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"annotator", "pipelines", "fas_train"}


def _wheel(out: Path) -> Path:
    """Built from a copy of the tracked sources: setuptools' build/ folder in a checkout keeps files
    a restructuring removed, and a wheel built there would ship them."""
    src = out / "src"
    for name in ("pyproject.toml", "README.md", "annotator", "pipelines", "fas_train"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        src.mkdir(exist_ok=True)
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(out), str(src)], check=True, cwd=out)
    (wheel,) = out.glob("fas_annotator-*.whl")
    return wheel


def _venv(path: Path) -> Path:
    """A venv whose own site-packages comes first, then this environment's (its dependencies: sparing
    a second install of torch), without this environment's .pth files (the editable install)."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    Path(own, "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_the_wheel_installs_apart_from_the_checkout_and_annotates_the_sample(tmp_path, sample_store):
    wheel = _wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == TOP_LEVEL
    shipped = {n for n in names if n.startswith("annotator/datasets/sample_data/")}
    on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / "annotator/datasets/sample_data").rglob("*") if p.is_file()}
    assert shipped == on_disk and len(on_disk) >= 6
    assert "annotator/label/policy.toml" in names and "annotator/serve/static/app.js" in names

    python = _venv(tmp_path / "env")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANNOTATOR_SAMPLE_DATA")}
    where = subprocess.run([str(python), "-c", "import annotator, fas_train, pipelines; print(annotator.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(tmp_path / "env")), where
    bin_ = tmp_path / "env" / "bin"
    run = subprocess.run([str(bin_ / "annotate"), "run", "--dataset", "sample", "--out", "store.zarr",
                          "--cluster", "none"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    check = subprocess.run([str(bin_ / "annotate"), "verify", "store.zarr"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    made, reference = zarr.open_group(str(work / "store.zarr"), mode="r"), zarr.open_group(sample_store[0], mode="r")
    assert list(made["meta/sample_id"][:]) == list(reference["meta/sample_id"][:])
    assert (made["meta/status"][:] == 0).sum() >= 10
    help_ = subprocess.run([str(bin_ / "fas-train"), "--help"], cwd=work, env=env, capture_output=True, text=True)
    assert help_.returncode == 0 and "train" in help_.stdout
