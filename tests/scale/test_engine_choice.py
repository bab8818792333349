"""`vd extract --engine`: Ray is imported only when asked for, its absence is one line, and the
Ray engine's ordering step puts a clip Ray gave up on in its place as a failure."""

import subprocess
import sys

import numpy as np

from vd.data.discover import Clip
from vd.data.store import Failure

BLOCK_RAY = """
import importlib.abc, sys
class NoRay(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
sys.meta_path.insert(0, NoRay())
"""


def run_py(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_help_does_not_import_ray_or_tensorflow_and_lists_the_engines():
    p = run_py("import sys\nfrom vd.cli.main import main\n"
               "try:\n    main(['extract', '--help'])\nexcept SystemExit:\n    pass\n"
               "print('LOADED', [m for m in ('ray', 'tensorflow') if m in sys.modules])")
    assert "--engine [local|ray]" in p.stdout and "--ray-address" in p.stdout
    assert "LOADED []" in p.stdout, p.stdout[-500:] + p.stderr[-500:]


def test_without_ray_the_ray_engine_is_one_line_and_exit_2(tmp_path, synthetic_set):
    code = BLOCK_RAY + (f"from vd.cli.main import main\nsys.exit(main(['extract', {str(synthetic_set)!r}, "
                        f"{str(tmp_path / 'f.h5')!r}, '--backbone', 'mobilenet_v3_small', "
                        f"'--weights', 'random', '--engine', 'ray', '-q']))")
    p = run_py(code)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'vd[ray]'" in lines[0], p.stderr[-2000:]


def test_a_clip_ray_gave_up_on_is_a_failure_in_its_place():
    from vd.extract.engines.ray import LOST, _in_order

    clips = [Clip(None, f"c{i}.mp4", 0, "") for i in range(5)]

    def block(indices):
        n = len(indices)
        return {"index": np.array(indices), "stage": np.array([""] * n, object),
                "message": np.array([""] * n, object), "variant": np.zeros((n, 1), np.int8),
                "frame_index": np.zeros((n, 1, 20), np.int32), "n_frames": np.full(n, 50, np.int32),
                "fps": np.full(n, 25.0, np.float32), "features": np.ones((n, 20, 4), np.float16)}

    # Ray dropped the block of clip 1, and the last one (clip 4)
    pairs = [p for group in _in_order([block([0]), block([2, 3])], clips) for p in group]
    kinds = [(type(item).__name__, getattr(item, "video", None) or item.clip.video) for item, _ in pairs]
    assert kinds == [("_Decoded", "c0.mp4"), ("Failure", "c1.mp4"), ("_Decoded", "c2.mp4"),
                     ("_Decoded", "c3.mp4"), ("Failure", "c4.mp4")]
    assert all(item == Failure(item.video, "ray", LOST) for item, _ in pairs if isinstance(item, Failure))
