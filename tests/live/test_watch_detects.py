"""`vd watch` detects: a model trained the way a user of one fixed camera can train it finds the
fight in that camera's calm 4 s / violent 4 s / calm 4 s clip.

Why the camera's own footage (measured with mobilenet_v3_small random weights, the
``long_clip`` scene): with a random-weight backbone, how much a scene's features move under the
SAME motion style varies from scene to scene more than between the two styles (mean log step
distance of the motion-small head: training calm clips -3.9 .. -1.6, violent -3.1 .. -1.5; the
long clip's calm windows -2.5, its violent ones -1.6). A model trained on make_synthetic_set's
many scenes therefore scores this scene's calm windows like violence (0.87-0.94, violent
0.60-0.81), while it gets 14 of 16 held-out clips of other scenes right. Trained on the same
camera at other times (vd.synthetic.write_camera_clips: the long clip's scene rendered on past
its 12 s), calm windows score ~0.00 and violent ones ~0.99.

One module run: 8+8 training clips and 4+4 held-out clips of that camera's later footage (2.4 s
each, so `vd watch`'s default window -- the median training clip -- is 2.4 s), extracted with
mobilenet_v3_small, motion-small trained, the threshold chosen by `vd evaluate --target-recall
0.9 --save-threshold` on the held-out clips (what a user does), then `vd watch` on the file
with every default but the output paths.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from clirun import run_cli
from media import count_decodable_frames

LONG = (("calm", 4.0), ("violent", 4.0), ("calm", 4.0))  # the long_clip fixture's parts
CLIP_S = 2.4
TRAIN = (("violent", CLIP_S), ("calm", CLIP_S)) * 8
HELD = (("violent", CLIP_S), ("calm", CLIP_S)) * 4


@pytest.fixture(scope="module")
def camera_run(tmp_path_factory):
    """A motion-small run trained on the long clip's camera (later footage) + its threshold."""
    from vd.synthetic import write_camera_clips

    root = tmp_path_factory.mktemp("camera_run")
    write_camera_clips(root / "train", TRAIN, skip=LONG, seed=0)
    write_camera_clips(root / "held", HELD, skip=LONG + TRAIN, seed=0)
    mn = ["--backbone", "mobilenet_v3_small", "--weights", "random", "-q"]
    status, _, err = run_cli(["extract", str(root / "train"), str(root / "cam.h5"), *mn])
    assert status == 0, err
    run = root / "run"
    status, out, err = run_cli(["train", str(root / "cam.h5"), "--preset", "motion-small",
                                "--out", str(run), "--epochs", "60"])
    assert status == 0, out + err
    status, out, err = run_cli(["evaluate", str(root / "held"), "--model", str(run), "--no-tta",
                                "--target-recall", "0.9", "--save-threshold", "--json"])
    assert status == 0, out + err
    return run, json.loads(out)["operating_point"]["threshold"]


@pytest.mark.slow
def test_one_incident_around_the_fight_with_a_readable_clip_and_snapshot(camera_run, long_clip,
                                                                          tmp_path):
    path, segments = long_clip
    assert [s[0] for s in segments] == [p[0] for p in LONG]
    _, v0, v1 = segments[1]
    ev, sc, clips = tmp_path / "events.jsonl", tmp_path / "scores.jsonl", tmp_path / "clips"
    run, threshold = camera_run
    status, out, err = run_cli(["watch", str(path), "--model", str(run), "--events",
                                str(ev), "--scores", str(sc), "--clips", str(clips)])
    assert status == 0, err
    scores = [json.loads(x) for x in sc.read_text().splitlines()]
    window = scores[0]["end_s"] - scores[0]["start_s"]
    stride = scores[1]["start_s"] - scores[0]["start_s"]
    assert window == pytest.approx(CLIP_S, abs=0.05)  # the trained window, by default
    events = [json.loads(x) for x in ev.read_text().splitlines()]
    detail = f"events {events}; scores {[(s['start_s'], round(s['violent_probability'], 2)) for s in scores]}"
    assert [e["type"] for e in events] == ["start", "end"], detail
    end = events[1]
    tol = window + stride
    assert abs(end["start_s"] - v0) <= tol and abs(end["end_s"] - v1) <= tol, detail
    # no incident in the calm parts: every window wholly inside them is below the threshold
    calm = [s for s in scores if s["end_s"] <= v0 or s["start_s"] >= v1]
    assert calm and all(s["violent_probability"] < threshold for s in calm), detail
    # the motion gate (on by default) lets every window that reaches into the fight through
    assert not [s for s in scores if s.get("still") and s["end_s"] > v0 and s["start_s"] < v1], detail
    clip = Path(end["clip"])
    assert clip.exists() and count_decodable_frames(clip) > 25, end
    assert cv2.imread(end["snapshot"]).shape[2] == 3
    assert v0 - tol <= end["peak_s"] <= v1 + tol, end


def _frames(path):
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            return np.stack(out).astype(np.int16)
        out.append(f)


def test_camera_clips_are_the_long_clips_camera_later(tmp_path):
    """write_camera_clips(skip=the long clip's parts) continues the long clip's scene: its clips
    are the frames a longer long clip holds after 12 s (up to mp4v's lossy coding), labelled by
    folder; another seed is another scene."""
    from vd.synthetic import write_camera_clips, write_long_clip

    more = (("violent", 0.4), ("calm", 0.4))
    write_long_clip(tmp_path / "longer.mp4", LONG + more, seed=0)
    paths = write_camera_clips(tmp_path / "cam", more, skip=LONG, seed=0)
    other = write_camera_clips(tmp_path / "other", more, skip=LONG, seed=1)
    assert [p.relative_to(tmp_path / "cam").as_posix() for p in paths] == [
        "NonViolence/CN_001.mp4", "Violence/CV_000.mp4"]
    later = _frames(tmp_path / "longer.mp4")[300:]
    cam = np.concatenate([_frames(paths[1]), _frames(paths[0])])
    assert cam.shape == later.shape == (20, 240, 320, 3)
    same = np.abs(cam - later).mean()
    assert same < 2.0, same
    assert np.abs(np.concatenate([_frames(other[1]), _frames(other[0])]) - later).mean() > 10 * same


# --- masks: A fight inside a mask raises nothing; the same fight outside it does -- with a real trained
# model through `vd watch --mask`.
#
# The model is ``camera_run`` (motion-small on mobilenet_v3_small features of the long clip's
# camera at other times, its threshold from held-out clips). The long clip (calm 4 s / violent
# 4 s / calm 4 s) is watched with a mask over the middle of the picture, where the fight happens
# (vd.synthetic: its centre stays within 30-70 % of the width and 35-65 % of the height), and
# with one over a corner. Measured through vd predict's window path on a masked copy of the clip:
# with the middle masked every window scores 0.00 (threshold 0.47); with a corner masked the
# fight's windows score 0.80-0.95, calm ones <= 0.02.
MIDDLE = "0.15,0.1 0.85,0.1 0.85,0.9 0.15,0.9"     # over the fight
CORNER = "0,0 0.2,0 0.2,0.2 0,0.2"                 # away from it


def _watch(run, path, tmp_path, name, *args):
    """`vd watch` on ``path`` with every default but the outputs (and ``args``); (events, scores,
    stderr)."""
    ev, sc = tmp_path / f"{name}-events.jsonl", tmp_path / f"{name}-scores.jsonl"
    status, _, err = run_cli(["watch", str(path), "--model", str(run), "--events", str(ev),
                              "--scores", str(sc), "--status-every", "0", *args])
    assert status == 0, err
    read = lambda p: [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []  # noqa: E731
    return read(ev), read(sc), err


@pytest.mark.slow
def test_a_fight_inside_a_mask_raises_nothing_outside_it_it_does(camera_run, long_clip, tmp_path):
    run, threshold = camera_run
    path, segments = long_clip
    _, v0, v1 = segments[1]

    events, scores, _ = _watch(run, path, tmp_path, "corner", "--mask", CORNER)
    detail = [(s["start_s"], round(s["violent_probability"], 2)) for s in scores]
    assert [e["type"] for e in events] == ["start", "end"], detail
    assert abs(events[0]["start_s"] - v0) <= 2 * CLIP_S, (events[0], detail)

    events, scores, _ = _watch(run, path, tmp_path, "middle", "--mask", MIDDLE)
    detail = [(s["start_s"], round(s["violent_probability"], 2)) for s in scores]
    assert events == [] and len(scores) >= 8, detail
    assert max(s["violent_probability"] for s in scores) < threshold, detail


@pytest.mark.slow
def test_a_zone_around_the_fight_keeps_the_incident(camera_run, long_clip, tmp_path):
    """The analysed picture cropped to the middle (the backbone sees the fight larger):
    measured, the fight's windows 0.95-0.98, the calm ones 0.04-0.22."""
    run, threshold = camera_run
    path, segments = long_clip
    _, v0, v1 = segments[1]
    events, scores, _ = _watch(run, path, tmp_path, "zone", "--zone", MIDDLE)
    detail = [(s["start_s"], round(s["violent_probability"], 2)) for s in scores]
    assert [e["type"] for e in events] == ["start", "end"], detail
    assert abs(events[0]["start_s"] - v0) <= 2 * CLIP_S, (events[0], detail)
    assert abs(events[1]["end_s"] - v1) <= 2 * CLIP_S + 4.0, (events[1], detail)  # + cooldown


@pytest.mark.slow
def test_a_pixel_mask_outside_the_frames_fails_that_source_in_one_line(camera_run, long_clip, tmp_path):
    run, _ = camera_run
    path, _ = long_clip
    ev = tmp_path / "events.jsonl"
    status, out, err = run_cli(["watch", str(path), "--model", str(run), "--events", str(ev),
                                "--mask", "0,0 5000,0 5000,10", "--status-every", "0"])
    assert status == 1, err                                   # a file that failed: exit 1
    said = [x for x in err.splitlines() if "failed:" in x]
    assert len(said) == 1 and "outside the" in said[0] and "Traceback" not in err, err
    assert out == "" and not ev.exists() or ev.read_text() == ""


@pytest.mark.slow
def test_an_mqtt_spool_that_is_not_a_folder_of_vds_is_refused_untouched(camera_run, long_clip, tmp_path):
    run, _ = camera_run
    path, _ = long_clip
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    status, out, err = run_cli(["watch", str(path), "--model", str(run), "--mqtt",
                                "mqtt://127.0.0.1:1", "--mqtt-spool", str(notes)])
    assert status == 2 and len(err.strip().splitlines()) == 1 and "spool folder" in err, err
    assert notes.read_text() == "mine\n" and out == ""


def test_a_bad_mask_or_gate_setting_is_one_line_before_the_model_loads(long_clip, tmp_path):
    path, _ = long_clip
    for args, says in ((["--mask", "0,0 1,1"], "polygon"), (["--zone", "a,b c,d e,f"], "polygon"),
                       (["--motion-min-area", "2"], "min_area"),
                       (["--mqtt", "mqtt://host", "--mqtt-score-interval", "-1"], "score_interval"),
                       (["--mqtt", "mqtt://me:hunter2@host:99999"], "me:***@host"),
                       (["--mqtt", "http://host"], "mqtt://"),
                       (["--mqtt", "mqtt://host", "--mqtt-prefix", "a/#"], "prefix")):
        status, out, err = run_cli(["watch", str(path), "--model", str(tmp_path / "nothing"), *args])
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and says in lines[0], (args, err)
        assert "no trained model" not in err                  # said before the model is looked for
        assert "hunter2" not in err


# --- the motion gate: still footage skips the backbone


def _sampled_fps(err, name):
    """The backbone's sampled frames per stream second in ``name``'s last status line."""
    import re

    return float(re.findall(rf"{re.escape(name)}: stream .*?sampled ([0-9.]+)/", err)[-1])


@pytest.mark.slow
def test_the_motion_gate_keeps_a_still_recordings_windows_from_the_backbone(camera_run, tmp_path):
    from footage import write_still

    run, _ = camera_run
    still = write_still(tmp_path / "still.mp4", n=500)   # 20 s of an empty scene, sensor noise
    _, gated, err_on = _watch(run, still, tmp_path, "auto")
    _, every, err_off = _watch(run, still, tmp_path, "off", "--motion-gate", "off")
    assert [(s["start_s"], s["end_s"]) for s in gated] == [(s["start_s"], s["end_s"]) for s in every]
    flagged = [s for s in gated if s.get("still")]
    assert not any(s.get("still") for s in every)
    assert all(s["violent_probability"] == 0.0 for s in flagged)
    # the first window holds the connection's first frame (no predecessor: motion); the last
    # ones are only known at the end of the file; every other window is still
    assert len(flagged) >= len(gated) - 4 and len(gated) >= 12, gated
    assert f"still {len(flagged)}" in err_on and ", still " not in err_off
    on, off = _sampled_fps(err_on, "still.mp4"), _sampled_fps(err_off, "still.mp4")
    assert on < 0.5 * off, (on, off)


# --- MQTT: `vd watch --mqtt` to a real mosquitto; a real paho subscriber sees what Home Assistant would


@pytest.mark.slow
@pytest.mark.mosquitto
def test_watch_publishes_discovery_on_off_and_the_fight_event_to_mqtt(camera_run, long_clip, tmp_path):
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (the mqtt extra) is not installed")
    from mqtt_broker import Mosquitto

    from test_mqtt import Subscriber

    run, _ = camera_run
    path, segments = long_clip
    _, v0, v1 = segments[1]
    broker = Mosquitto(tmp_path / "broker")
    try:
        broker.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"mosquitto cannot start here: {e}")
    sub = Subscriber(broker.port, client_id="watch-sub")
    try:
        events, scores, err = _watch(run, path, tmp_path, "mqtt", "--mqtt",
                                     f"mqtt://127.0.0.1:{broker.port}", "--mqtt-spool",
                                     str(tmp_path / "mqtt-spool"), "--mqtt-score-interval", "0")
        assert [e["type"] for e in events] == ["start", "end"], err
        got = sub.wait(lambda: len(sub.events()) >= 2 and sub.on("vd/available")[-1:] == [(b"offline", False)]
                       and sub.events())
        assert got == events                                  # the very events, in order
        cam = "long_mp4"
        for kind, obj in (("binary_sensor", "violence"), ("sensor", "score"), ("image", "snapshot")):
            (cfg, _), *_ = sub.on(f"homeassistant/{kind}/vd_{cam}/{obj}/config")
            assert json.loads(cfg)["availability_topic"] == "vd/available"
        states = [p for p, _ in sub.on(f"vd/{cam}/violence")]
        assert states[-3:] == [b"OFF", b"ON", b"OFF"], states
        published = [json.loads(p) for p, _ in sub.on(f"vd/{cam}/score")]
        assert published and published[-1]["t"] == pytest.approx(scores[-1]["end_s"], abs=1e-3)
        assert not list((tmp_path / "mqtt-spool").glob("*.json"))   # every event acknowledged
    finally:
        sub.close()
        broker.kill()


# --- untrimmed recordings: vd evaluate --annotations measures what vd watch does ------------------


@pytest.fixture(scope="module")
def camera_recordings(tmp_path_factory):
    """Two 30 s recordings of the camera (people walking; fights at known times) and their
    annotations: the same scene the camera run was trained on, at 25 fps."""
    from vd.synthetic import write_recording

    root = tmp_path_factory.mktemp("recordings")
    rows = ["video,start_s,end_s"]
    for name, fights in (("rec_a.mp4", [(6.0, 4.0), (20.0, 4.0)]), ("rec_b.mp4", [])):
        for a, b in write_recording(root / "recs" / name, 30.0, [("violent", s, n) for s, n in fights],
                                    fps=25.0, seed=0):
            rows.append(f"{name},{a:.3f},{b:.3f}")
    (root / "ann.csv").write_text("\n".join(rows) + "\n")
    return root / "recs", root / "ann.csv"


@pytest.mark.slow
def test_evaluate_recordings_counts_what_watch_raises(camera_run, camera_recordings, tmp_path):
    """`vd evaluate RECORDINGS --annotations` scores each recording with vd watch's engine: the
    same incidents as `vd watch` on the file, the same window scores, recall / false alarms /
    latency from them; --events measures the watch run's own file to the same numbers; the
    report draws a picture per recording."""
    recs, ann = camera_recordings
    run, _ = camera_run
    ev = tmp_path / "events.jsonl"
    status, out, err = run_cli(["watch", str(recs / "rec_a.mp4"), str(recs / "rec_b.mp4"),
                                "--model", str(run), "--events", str(ev)])
    assert status == 0, err
    watched = [json.loads(x) for x in ev.read_text().splitlines()]
    ends = sorted((e["source"], e["start_s"], e["end_s"]) for e in watched if e["type"] == "end")
    status, out, err = run_cli(["evaluate", str(recs), "--annotations", str(ann), "--model", str(run),
                                "--json", "--report", str(tmp_path / "rep")])
    assert status == 0, err
    res = json.loads(out)
    got = sorted((r["video"], round(i["start_s"], 3), round(i["end_s"], 3))
                 for r in res["recordings"] for i in r["incidents"])
    assert got == ends, (got, ends)
    s = res["summary"]
    assert s["intervals"] == 2 and s["hours"] == pytest.approx(60 / 3600, rel=1e-3)
    detail = json.dumps(res["recordings"])[:2000]
    assert s["recall"] == 1.0 and s["false_alarms"] == 0, detail   # the camera's model detects
    assert s["latency_max_s"] <= res["window"] + res["stride"] + 1.0, detail
    assert s["window_auc"] > 0.9, detail
    # the watch run's events file, measured without scoring again: the same counts
    status, out, err = run_cli(["evaluate", str(recs), "--annotations", str(ann), "--model", str(run),
                                "--events", str(ev), "--json"])
    assert status == 0, err
    audit = json.loads(out)["summary"]
    assert (audit["detected"], audit["false_alarms"], audit["latency_p90_s"]) == (
        s["detected"], s["false_alarms"], s["latency_p90_s"])
    pics = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert pics == ["operating_curve.png", "rec_a.mp4.png", "rec_b.mp4.png"]


@pytest.mark.slow
def test_alarm_tuned_for_a_false_alarm_budget_is_saved_and_used_by_watch(camera_run, camera_recordings,
                                                                           tmp_path):
    import shutil

    recs, ann = camera_recordings
    run = tmp_path / "run"
    shutil.copytree(camera_run[0], run)
    status, out, err = run_cli(["evaluate", str(recs), "--annotations", str(ann), "--model", str(run),
                                "--target-false-alarms-per-hour", "1", "--save-alarm", "--json"])
    assert status == 0, err
    res = json.loads(out)
    chosen = res["chosen"]
    assert res["settings_tried"] >= 200
    assert chosen["false_alarms_per_hour"] <= 1.0
    assert any("tuned on" in n for n in res["notes"])
    saved = json.loads((run / "config.json").read_text())["alarm"]
    assert (saved["threshold"], saved["k"], saved["n"], saved["cooldown"]) == (
        chosen["threshold"], chosen["k"], chosen["n"], chosen["cooldown"])
    status, out, err = run_cli(["watch", str(recs / "rec_b.mp4"), "--model", str(run)])
    assert status == 0, err
    assert f"smooth {saved['k']}/{saved['n']}, run alarm" in err, err
    assert ", run alarm: vd evaluate" in err, err
