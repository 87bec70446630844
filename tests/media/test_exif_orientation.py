"""Images carry their EXIF orientation into the frame the way videos' display matrices do: a photo
stored sideways (or mirrored) with its tag is annotated upright, meta/rotation and meta/mirrored say
how, and the row's transform maps the stored (sideways) pixels to the crop (docs/store.md, "Mapping a
crop back")."""

import cv2
import numpy as np
import pytest
import zarr
from PIL import Image, ImageOps

from annotator.core.samples import Status
from annotator.media.decode import EXIF_ORIENTATIONS, UPRIGHT, DecodeError, Orientation, read_image, read_oriented_image
from helpers import problems, sync_config
from pipelines.run import run

TAG = 0x0112


def save_tagged(path, pixels: np.ndarray, value: int | None) -> None:
    """pixels as stored, with EXIF Orientation `value` (None: no EXIF at all)."""
    im = Image.fromarray(pixels)
    if value is None:
        im.save(path)
        return
    exif = Image.Exif()
    exif[TAG] = value
    im.save(path, exif=exif.tobytes())


def stored_for(upright: np.ndarray, value: int) -> np.ndarray:
    """The pixels a camera stores for `upright` when it tags them with `value`: Pillow's inverse of
    exif_transpose (ImageOps' own table of transposes, inverted), independent of the code under test."""
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}.get(value)
    im = Image.fromarray(upright)
    return np.asarray(im.transpose(inverse) if inverse is not None else im)


def exif_transposed(pixels: np.ndarray, value: int) -> np.ndarray:
    im = Image.fromarray(pixels)
    im.getexif()[TAG] = value
    return np.asarray(ImageOps.exif_transpose(im))


@pytest.mark.parametrize("value", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_the_tag_is_read_from_one_decode_and_matches_pillow(tmp_path, value, suffix):
    rng = np.random.default_rng(value)
    stored = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / f"o{value}{suffix}"
    save_tagged(path, stored, value)
    pixels, orientation = read_oriented_image(str(path))
    assert orientation == EXIF_ORIENTATIONS[value] and pixels.shape == (5, 7, 3)
    assert (read_image(str(path)) == pixels).all()  # read_image: the pixels as stored, the tag not applied
    if suffix == ".png":  # lossless: the stored pixels exactly
        assert (pixels == stored).all()
    upright = orientation.apply(pixels)
    assert np.array_equal(upright, exif_transposed(pixels, value))  # Pillow's semantics, mirrors included
    assert orientation.mirrored == (value in (2, 4, 5, 7))
    m = orientation.matrix(5, 7)  # every stored pixel (centres) lands on the upright pixel holding it
    ys, xs = np.mgrid[0:5, 0:7]
    to = np.rint(np.stack([xs.ravel(), ys.ravel(), np.ones(35)], 1) @ m.T).astype(int)
    assert (upright[to[:, 1], to[:, 0]] == pixels[ys.ravel(), xs.ravel()]).all()


def test_no_tag_or_a_value_outside_the_eight_is_as_stored(tmp_path):
    stored = np.zeros((4, 6, 3), np.uint8)
    save_tagged(tmp_path / "none.png", stored, None)
    save_tagged(tmp_path / "nine.png", stored, 9)  # Pillow's exif_transpose ignores it too
    assert read_oriented_image(str(tmp_path / "none.png"))[1] == UPRIGHT
    assert read_oriented_image(str(tmp_path / "nine.png"))[1] == UPRIGHT
    assert UPRIGHT.apply(stored) is stored
    with pytest.raises(ValueError, match="rotation must be 0, 90, 180 or 270"):
        Orientation(45)


def test_a_damaged_exif_block_is_a_one_line_decode_error(tmp_path, monkeypatch):
    save_tagged(tmp_path / "a.png", np.zeros((4, 6, 3), np.uint8), 6)

    def broken(self):
        raise SyntaxError("not a TIFF file (header b'junk' not valid)")

    monkeypatch.setattr(Image.Image, "getexif", broken)
    with pytest.raises(DecodeError, match="^cannot read the image's EXIF metadata: SyntaxError: not a TIFF") as e:
        read_oriented_image(str(tmp_path / "a.png"))
    assert "\n" not in str(e.value)


def test_a_datasets_face_box_follows_its_pixels_through_each_orientation():
    from annotator.face.detect import FaceBox
    from annotator.shard import orient_box

    frame = np.zeros((40, 60), np.uint8)
    frame[5:15, 10:30] = 1  # the box (10, 5, 30, 15) of a face file, in stored pixels
    for value, orientation in EXIF_ORIENTATIONS.items():
        x0, y0, x1, y1 = (int(v) for v in orient_box(FaceBox((10, 5, 30, 15), 1.0), orientation, 40, 60).box)
        shown = orientation.apply(frame)
        assert shown[y0:y1, x0:x1].sum() == 200 == shown.sum(), value


@pytest.fixture(scope="module")
def tagged_store(tmp_path_factory, face_image):
    """The astronaut off-centre on a 900 x 700 canvas, stored eight ways, each with its EXIF tag."""
    tmp = tmp_path_factory.mktemp("exif")
    root = tmp / "phone"
    (root / "bonafide").mkdir(parents=True)
    canvas = np.full((700, 900, 3), 90, np.uint8)
    canvas[120:632, 300:812] = face_image
    for value in range(1, 9):
        save_tagged(root / "bonafide" / f"o{value}.png", stored_for(canvas, value), value)
    out = str(tmp / "o.zarr")
    run(sync_config(dataset="folder", root=str(root)), out, cluster="none", progress=False)
    return out, root, canvas


def test_each_orientation_is_annotated_upright(tagged_store):
    out, root, canvas = tagged_store
    g = zarr.open_group(out, mode="r")
    assert g["meta/source"][:].tolist() == [f"bonafide/o{v}.png" for v in range(1, 9)]
    assert (g["meta/status"][:] == Status.OK).all()
    assert g["meta/rotation"][:].tolist() == [0, 0, 180, 180, 270, 90, 90, 270]
    assert g["meta/mirrored"][:].tolist() == [False, True, False, True, True, False, True, False]
    sideways = [v >= 5 for v in range(1, 9)]
    assert g["meta/frame_height"][:].tolist() == [900 if s else 700 for s in sideways]  # the frame as stored
    assert g["meta/frame_width"][:].tolist() == [700 if s else 900 for s in sideways]
    image = g["image"][:].astype(int)
    for k in range(1, 8):  # turns and mirrors of a PNG are lossless: the upright crop exactly
        assert np.abs(image[k] - image[0]).max() == 0, k + 1
    assert problems(out) == []


def test_the_crops_landmarks_map_back_onto_the_face_in_the_stored_sideways_frame(tagged_store, face_landmarks):
    out, root, canvas = tagged_store
    g = zarr.open_group(out, mode="r")
    truth_upright = face_landmarks[:, :2].astype(np.float64) + (300, 120)  # FaceMesh on the face alone, pasted
    for k, value in enumerate(range(1, 9)):
        stored_hw = (int(g["meta/frame_height"][k]), int(g["meta/frame_width"][k]))
        to_upright = np.vstack([EXIF_ORIENTATIONS[value].matrix(*stored_hw), [0, 0, 1]])  # checked against Pillow above
        truth = (np.c_[truth_upright, np.ones(len(truth_upright))] @ np.linalg.inv(to_upright).T)[:, :2]
        inverse = cv2.invertAffineTransform(g["transform"][k])
        back = g["landmarks"][k][:, :2].astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
        err = np.linalg.norm(back - truth, axis=1)
        assert np.median(err) < 1 and err.max() < 2, (value, np.median(err), err.max())  # measured 0.39, 0.98


def test_the_transform_maps_the_crop_onto_the_stored_sideways_pixels(tagged_store):
    out, root, canvas = tagged_store
    g = zarr.open_group(out, mode="r")
    transforms, image = g["transform"][:], g["image"][:]
    size = image.shape[1]
    assert transforms.shape == (8, 2, 3) and transforms.dtype == np.float64
    upright_crop = transforms[0]  # tag 1: the stored frame is the upright one
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1], [size / 2, size / 2]], float)
    back = cv2.invertAffineTransform(upright_crop)
    on_canvas = corners @ back[:, :2].T + back[:, 2]
    h, w = canvas.shape[:2]
    for k, value in enumerate(range(1, 9)):
        stored = np.asarray(Image.open(root / "bonafide" / f"o{value}.png"))
        # where Pillow's exif_transpose takes each stored pixel: the stored (x, y) of every upright pixel
        sh, sw = stored.shape[:2]
        xs = exif_transposed(np.tile(np.arange(sw, dtype=np.int32), (sh, 1)), value)
        ys = exif_transposed(np.tile(np.arange(sh, dtype=np.int32)[:, None], (1, sw)), value)
        assert xs.shape == (h, w)
        px, py = np.rint(on_canvas).astype(int).T
        expected = np.stack([xs[py, px], ys[py, px]], 1)
        inverse = cv2.invertAffineTransform(transforms[k])
        found = corners @ inverse[:, :2].T + inverse[:, 2]
        assert np.abs(found - expected).max() <= 0.5 + 1e-6, value  # the rounding of on_canvas only
        # and the stored sideways frame warped by the transform is the row's crop
        warped = cv2.warpAffine(stored, transforms[k], (size, size), flags=cv2.INTER_LINEAR)
        diff = np.abs(warped.astype(int) - image[k])
        assert diff.mean() < 0.1 and diff.max() <= 8, (value, diff.mean(), diff.max())


def test_a_tagged_image_is_not_turned_again_by_auto_rotate(tmp_path, face_image):
    """The tag is trusted: auto-rotate (the default) only turns frames without orientation metadata."""
    root = tmp_path / "phone"
    (root / "bonafide").mkdir(parents=True)
    save_tagged(root / "bonafide" / "a.png", stored_for(face_image, 6), 6)
    save_tagged(root / "bonafide" / "b.png", stored_for(face_image, 6), None)  # the same pixels, untagged
    out = str(tmp_path / "t.zarr")
    run(sync_config(dataset="folder", root=str(root)), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert (g["meta/status"][:] == Status.OK).all()
    assert g["meta/rotation"][:].tolist() == [90, 90]  # by the tag; found by auto-rotate without it
    assert np.array_equal(g["transform"][0], g["transform"][1])
    assert np.array_equal(g["image"][0], g["image"][1])
