"""tests/frame_numbers.py: the number in every frame reads back after codecs, resizing,
colour-order swaps, grey, noise, JPEG and rotation; numbered clips read back frame for frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from frame_numbers import read_all

import frame_numbers as F



@pytest.mark.parametrize("n", [0, 1, 2, 137, 4095, 4096, 65535, F.MAX_FRAME_NUMBER])
@pytest.mark.parametrize("size", [(160, 120), (320, 240), (64, 48), (1920, 1080)])
def test_numbered_frame_roundtrip(n, size):
    f = F.numbered_frame(n, size)
    assert f.shape == (size[1], size[0], 3) and f.dtype == np.uint8
    assert F.read_frame_number(f) == n


def test_number_survives_rotation_grey_rgb_resize_noise_and_jpeg():
    f = F.numbered_frame(1234, (160, 120))
    rng = np.random.default_rng(0)
    noisy = np.clip(f.astype(np.int16) + rng.normal(0, 25, f.shape), 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 20])
    variants = {
        "rgb": f[:, :, ::-1],
        "grey": cv2.cvtColor(f, cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(f, cv2.COLOR_BGR2BGRA),
        "resize224": cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA),
        "noise": noisy,
        "jpeg20": cv2.imdecode(jpg, cv2.IMREAD_COLOR),
        "float-safe": f.astype(np.float32),
    }
    for k in (1, 2, 3):
        variants[f"rot{90 * k}"] = np.rot90(f, k)
    for name, v in variants.items():
        assert F.read_frame_number(v) == 1234, name
    assert F.frame_channel_order(f) == "bgr"
    assert F.frame_channel_order(f[:, :, ::-1]) == "rgb"
    assert F.frame_channel_order(variants["grey"]) == "grey"
    assert F.frame_rotation(f) == 0
    assert F.frame_rotation(np.rot90(f, -1)) == 90  # shown rotated 90° clockwise


def test_read_frame_number_rejects_other_pictures():
    rng = np.random.default_rng(0)
    for img in (np.zeros((120, 160, 3), np.uint8), np.full((120, 160, 3), 255, np.uint8),
                rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)):  # fmt: skip
        with pytest.raises(ValueError):
            F.read_frame_number(img)
    with pytest.raises(ValueError):
        F.numbered_frame(F.MAX_FRAME_NUMBER + 1)


@pytest.mark.parametrize(
    "name,fourcc,lossless",
    [("c.avi", None, True), ("c.mkv", None, True), ("c.mp4", None, False), ("c.avi", "MJPG", False)],
)
def test_numbered_clip_reads_back_every_frame(tmp_path, name, fourcc, lossless):
    path = F.write_numbered_clip(tmp_path / name, 60, fps=30.0, size=(160, 120), fourcc=fourcc, start=5)
    assert path.is_file() and not list(tmp_path.glob(".*partial*"))
    frames, header, fps = read_all(path)
    assert len(frames) == 60 and header == 60 and fps == pytest.approx(30.0)
    assert [F.read_frame_number(f) for f in frames] == list(range(5, 65))
    if lossless:  # FFV1: bit-exact pixels
        assert all(np.array_equal(f, F.numbered_frame(5 + i, (160, 120))) for i, f in enumerate(frames))


def test_numbered_clip_seek_lands_on_the_asked_frame(tmp_path):
    path = F.write_numbered_clip(tmp_path / "c.avi", 40)
    cap = cv2.VideoCapture(str(path))
    for target in (0, 17, 39, 3):
        cap.set(cv2.CAP_PROP_POS_FRAMES, target)
        ok, f = cap.read()
        assert ok and F.read_frame_number(f) == target
    cap.release()


def test_writer_errors_are_loud(tmp_path):
    with pytest.raises(ValueError):
        F.write_numbered_clip(tmp_path / "c.xyz", 5)
    with pytest.raises(ValueError):
        F.write_numbered_clip(tmp_path / "c.avi", 0)
