"""An export format registered from this file alone writes every row of a store: the driver asks
only what the Exporter contract gives (files, write, lists)."""

from pathlib import Path

import numpy as np
import pytest
import zarr

from annotator.export import EXPORTERS, Exporter, export_store
from helpers import registered


class NpzRows(Exporter):
    """One .npz per row (image, label, landmarks) and one list of rows."""

    name = "test-npz"
    about = "Format: one .npz per row, rows.txt lists them with their store row."

    def files(self, r):
        return [f"{r.group}/{r.video}_{r.number}.npz"]

    def write(self, r, image, label, landmarks, out: Path) -> None:
        (path,) = self.files(r)
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(out / path, image=image, label=label, landmarks=landmarks)

    def lists(self, rows, out: Path) -> list[str]:
        (out / "rows.txt").write_text("".join(f"{r.row} {self.files(r)[0]}\n" for r in rows))
        return ["rows.txt"]


@pytest.fixture
def npz_format():
    with registered((EXPORTERS, "test-npz", NpzRows, {})):
        yield


def test_a_registered_format_exports_every_row_as_stored(npz_format, sample_store, tmp_path):
    url, _ = sample_store
    out = tmp_path / "export"
    res = export_store(url, "test-npz", str(out), "all", workers=2, progress=False)
    root = zarr.open_group(url, mode="r")
    ok = np.flatnonzero(root["meta/status"][:] == 0)
    lines = (out / "rows.txt").read_text().splitlines()
    assert res["rows"] == len(lines) == len(ok) >= 10
    for line in lines:
        row, path = line.split(" ", 1)
        got = np.load(out / path)
        assert np.array_equal(got["image"], root["image"][int(row)])
        assert np.array_equal(got["label"], root["label"][int(row)])
        assert np.array_equal(got["landmarks"], root["landmarks"][int(row)])
