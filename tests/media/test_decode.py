import numpy as np
import pytest
from PIL import Image

from annotator.media.decode import DecodeError, count_frames, read_image, read_video_frames
from annotator.media.sampling import even_frame_indices
from helpers import write_video


def write_numbered_video(path, n=100, gop=10, size=(96, 64)):
    """Frame i is a flat grey of value 2*i, so a decoded frame tells its own index."""
    write_video(path, (np.full((size[1], size[0], 3), 2 * i, np.uint8) for i in range(n)),
                options={"g": str(gop), "crf": "10"})


def test_even_indices():
    assert even_frame_indices(250, 10).tolist() == [0, 28, 55, 83, 111, 138, 166, 194, 221, 249]
    assert even_frame_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    assert even_frame_indices(9, 1).tolist() == [4]


@pytest.mark.parametrize("gop", [5, 250])
def test_video_frames_are_the_sampled_ones(tmp_path, gop):
    p = tmp_path / "v.mp4"
    write_numbered_video(p, n=100, gop=gop)
    assert count_frames(str(p)) == 100
    idx, frames, _ = read_video_frames(str(p), 7)
    assert idx.tolist() == even_frame_indices(100, 7).tolist()
    for i, f in zip(idx, frames):
        assert f.shape == (64, 96, 3) and f.dtype == np.uint8
        assert abs(float(f.mean()) - 2 * i) < 2.5, (i, f.mean())


def test_truncated_video_gives_errors_not_exceptions(tmp_path):
    p = tmp_path / "v.mp4"
    write_numbered_video(p, n=100)
    data = p.read_bytes()
    t = tmp_path / "t.mp4"
    t.write_bytes(data[: len(data) // 3])
    try:
        idx, frames, _ = read_video_frames(str(t), 5)
    except DecodeError:
        return  # unreadable as a whole is also a valid outcome
    assert any(isinstance(f, DecodeError) for f in frames)


def test_read_image_modes(tmp_path, face_image):
    gray = tmp_path / "g.png"
    Image.fromarray(face_image[..., 0]).save(gray)
    g = read_image(str(gray))
    assert g.shape == (512, 512, 3) and (g[..., 0] == g[..., 2]).all()
    rgba = tmp_path / "a.png"
    Image.fromarray(np.dstack([face_image, np.full(face_image.shape[:2], 7, np.uint8)])).save(rgba)
    assert (read_image(str(rgba)) == face_image).all()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DecodeError):
        read_image(str(bad))
    with pytest.raises(DecodeError):
        read_image(str(tmp_path / "missing.png"))
