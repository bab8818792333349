"""examples/score_clip_onnx.py scores a clip with onnxruntime, OpenCV and numpy only, and gives
what ``vd predict --no-tta`` gives within 1e-3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import run_cli
from export_runs import trained_run, read_json_lines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "score_clip_onnx.py"


@pytest.mark.slow
def test_example_matches_vd_predict(tmp_path_factory, tmp_path, synthetic_set):
    run_dir = trained_run(tmp_path_factory)
    graph = tmp_path / "clip.onnx"
    status, _, err = run_cli(["export", str(run_dir), str(graph), "--with-backbone", "--no-check"])
    assert status == 0, err
    clips = [sorted((synthetic_set / d).glob("*.mp4"))[0] for d in ("Violence", "NonViolence")]
    status, out, err = run_cli(["predict", "--model", str(run_dir), "--no-tta", "--json", "--quiet",
                                *map(str, clips)])
    assert status == 0, err
    want = {Path(r["path"]).name: r for r in read_json_lines(out)}
    # a clean interpreter: the example must not need vd, TensorFlow or Keras
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import runpy, sys; sys.modules['tensorflow'] = sys.modules['keras'] = "
            "sys.modules['vd'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    for clip in clips:
        res = subprocess.run([sys.executable, "-c", code, str(EXAMPLE), str(graph), str(clip),
                              "--threshold", "0.42"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=300)
        assert res.returncode == 0, res.stderr
        got = json.loads(res.stdout.strip().splitlines()[-1])
        ref = want[clip.name]
        assert abs(got["violent_probability"] - ref["violent_probability"]) < 1e-3
        assert got["frame_index"] == ref["frame_index"]
        assert got["n_frames"] == ref["n_frames"]
        assert got["label"] == ref["label"]
