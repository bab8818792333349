"""Incident clips from the ring of recent frames (real MP4s read back by OpenCV)."""

import cv2
import numpy as np
from media import count_decodable_frames

from vd.live.recorder import Recorder


def frame(k, w=320, h=240):
    f = np.zeros((h, w, 3), np.uint8)
    f[:, :, 1] = (k * 7) % 256
    cv2.putText(f, str(k), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return f




def test_clip_has_pre_roll_and_post_roll_and_is_renamed_when_whole(tmp_path):
    rec = Recorder(tmp_path, "door", pre_roll=1.0, post_roll=0.45, keep_s=3.0, fps=10.0)
    for k in range(50):               # 5 s at 10 fps; the ring keeps 3 s
        rec.add(k / 10, frame(k))
    assert rec.ring[0][0] >= 5.0 - 0.1 - 3.0 - 1e-9
    clip = tmp_path / "door-1.mp4"
    rec.start(clip, start_s=4.0)      # pre-roll from 3.0 s: frames 30..49 = 20 frames
    for k in range(50, 60):
        rec.add(k / 10, frame(k))
    assert not clip.exists() and (tmp_path / "door-1.partial.mp4").exists()
    rec.stop(end_s=5.5)               # post-roll until 5.95 s: not reached by frame 59
    assert not clip.exists()
    rec.add(6.0, frame(60))           # past 5.95 s: written, finalised
    assert clip.exists() and not (tmp_path / "door-1.partial.mp4").exists()
    assert count_decodable_frames(clip) == 20 + 10 + 1
    rec.add(6.1, frame(61))           # nothing more goes into a finished clip
    assert count_decodable_frames(clip) == 31


def test_snapshot_is_the_frame_shown_at_the_time(tmp_path):
    rec = Recorder(tmp_path, "door", keep_s=10.0, fps=10.0)
    for k in range(20):
        rec.add(k / 10, frame(k, 1280, 720))
    assert rec.ring[0][1].shape == (360, 640, 3)  # shrunk to 640 on the long side
    snap = tmp_path / "s.jpg"
    assert rec.snapshot(0.55, snap)
    img = cv2.imread(str(snap))
    want = cv2.resize(frame(5, 1280, 720), (640, 360), interpolation=cv2.INTER_AREA)
    assert img.shape == (360, 640, 3) and abs(int(img[..., 1].mean()) - int(want[..., 1].mean())) <= 3
    early = tmp_path / "early.jpg"    # before the ring: the oldest frame held (frame 0)
    assert rec.snapshot(-5.0, early)
    want0 = cv2.resize(frame(0, 1280, 720), (640, 360), interpolation=cv2.INTER_AREA)
    assert abs(int(cv2.imread(str(early))[..., 1].mean()) - int(want0[..., 1].mean())) <= 3
    assert not Recorder(tmp_path / "empty", "door").snapshot(1.0, tmp_path / "none.jpg")
    rec.start(tmp_path / "c.mp4", 1.0)
    rec.finish()                      # vd stopping: whole at once
    assert count_decodable_frames(tmp_path / "c.mp4") == 20


def test_only_a_whole_mp4_counts_and_partials_of_a_killed_run_are_removed(tmp_path):
    from vd.live.recorder import mp4_is_whole, remove_partials

    rec = Recorder(tmp_path, "door", keep_s=10.0, fps=10.0)
    for k in range(20):
        rec.add(k / 10, frame(k))
    rec.start(tmp_path / "door-1.mp4", 1.0)
    rec.finish()
    whole = (tmp_path / "door-1.mp4").read_bytes()
    assert mp4_is_whole(tmp_path / "door-1.mp4") and rec.error is None
    for cut in (len(whole) - 1, len(whole) // 2, 8):   # what a full disk leaves
        (tmp_path / "cut.mp4").write_bytes(whole[:cut])
        assert not mp4_is_whole(tmp_path / "cut.mp4")
    (tmp_path / "door-2.partial.mp4").write_bytes(whole[:100])
    (tmp_path / ".door-2.jpg.tmp").write_bytes(b"x")
    (tmp_path / "hall-3.partial.mp4").write_bytes(b"x")  # another source's: not ours to remove
    assert remove_partials(tmp_path, ["door"]) == 2
    assert sorted(p.name for p in tmp_path.glob("*partial*")) == ["hall-3.partial.mp4"]
