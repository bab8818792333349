"""The camera config file: a full file resolved over its defaults, every kind of mistake as one
line naming the file and the key (never a secret), and the reload diff."""

from __future__ import annotations

import textwrap

import pytest

from vd.errors import UserError
from vd.live.camconfig import Camera, diff, load, redact_url
from vd.live.retention import Policy

GOOD = """
defaults:
  threshold: 0.7
  smoothing: 2/3
  cooldown: 4
  retain_days: 30
max_clips_gb: 100
cameras:
  - name: door
    url: rtsp://vd:${DOOR_PASSWORD}@10.0.0.5:554/stream
    threshold: 0.8
    smoothing: 3/5
    max_clips_gb: 20
  - name: yard
    url: rtsp://10.0.0.6/stream
    enabled: false
  - name: hall.1
    url: 0
    retain_violent_days: 90
"""
ENV = {"DOOR_PASSWORD": "s3cr:t-pw"}


def write(tmp_path, text, name="cameras.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_a_good_file_resolves_defaults_and_secrets(tmp_path):
    cfg = load(write(tmp_path, GOOD), environ=ENV)
    door, yard, hall = cfg.cameras
    assert door.url == "rtsp://vd:s3cr:t-pw@10.0.0.5:554/stream"
    assert door.threshold == 0.8 and door.smoothing == (3, 5) and door.cooldown == 4.0
    assert hall.threshold == 0.7 and hall.smoothing == (2, 3) and hall.url == "0"
    assert hall.pre_roll == 5.0 and hall.post_roll == 5.0 and hall.enabled
    assert [c.name for c in cfg.enabled] == ["door", "hall.1"] and not yard.enabled
    assert "s3cr" not in repr(cfg) and "s3cr" not in door.shown_url
    assert door.shown_url == "rtsp://vd:***@10.0.0.5:554/stream"
    folder, per = cfg.retention()
    assert folder == Policy(max_clips_gb=100.0)
    assert per["door"] == Policy(30.0, None, 20.0) and per["hall.1"] == Policy(30.0, 90.0, None)
    assert per["door"].days_for("violent") == 365.0 and per["hall.1"].days_for("violent") == 90.0


BAD = [
    # (what is wrong, replace this, with this, the message names)
    ("unknown camera key", "    threshold: 0.8\n", "    treshold: 0.8\n", "cameras[0] (door).treshold: unknown key"),
    ("unknown top key", "max_clips_gb: 100\n", "max_clip_gb: 100\n", "max_clip_gb: unknown key"),
    ("unknown default key", "  cooldown: 4\n", "  cooldwn: 4\n", "defaults.cooldwn: unknown key"),
    ("negative threshold", "    threshold: 0.8\n", "    threshold: -0.5\n", "cameras[0] (door).threshold: must be at least 0"),
    ("threshold a string", "    threshold: 0.8\n", "    threshold: high\n", "cameras[0] (door).threshold: must be a number"),
    ("bad smoothing", "    smoothing: 3/5\n", "    smoothing: 5/3\n", "cameras[0] (door).smoothing: must be K/N"),
    ("negative roll", "    max_clips_gb: 20\n", "    pre_roll: -1\n", "cameras[0] (door).pre_roll: must be at least 0"),
    ("zero retention", "  retain_days: 30\n", "  retain_days: 0\n", "defaults.retain_days: must be above 0"),
    ("enabled not a bool", "    enabled: false\n", "    enabled: 'no'\n", "cameras[1] (yard).enabled: must be true or false"),
    ("bad scheme", "url: rtsp://10.0.0.6/stream", "url: ftp://10.0.0.6/stream", "cameras[1] (yard).url: scheme"),
    ("no host", "url: rtsp://10.0.0.6/stream", "url: rtsp:///stream", "cameras[1] (yard).url: has no host"),
    ("bad port", "@10.0.0.5:554/", "@10.0.0.5:99999/", "cameras[0] (door).url: is not a valid URL"),
    ("space in url", "url: rtsp://10.0.0.6/stream", "url: rtsp://10.0.0.6/my stream", "cameras[1] (yard).url: has spaces"),
    ("duplicate name", "  - name: hall.1\n", "  - name: door\n", "cameras[2] (door).name: camera 'door' is named twice"),
    ("bad name", "  - name: hall.1\n", "  - name: ../hall\n", "cameras[2] (../hall).name: must be 1–64"),
    ("missing url", "    url: 0\n", "", "cameras[2] (hall.1): url is missing"),
    ("missing env var", "${DOOR_PASSWORD}", "${DOOR_PASSWORD}${NOPE_VAR}", "cameras[0] (door).url: environment variable NOPE_VAR is not set"),
    ("duplicate key", "    threshold: 0.8\n", "    threshold: 0.8\n    threshold: 0.9\n", "cameras.yaml:12:5: not valid YAML: key 'threshold' is given twice"),
    ("not yaml", "cameras:\n", "cameras: [\n", "cameras.yaml:"),
    ("cameras not a list", "cameras:\n", "cameras: {}\nx:\n", "x: unknown key"),
]


@pytest.mark.parametrize("why,old,new,says", BAD, ids=[b[0] for b in BAD])
def test_mistakes_are_one_line_naming_the_file_and_key(tmp_path, why, old, new, says):
    text = textwrap.dedent(GOOD)
    assert old in text, why
    p = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(UserError) as e:
        load(p, environ=ENV)
    msg = e.value.message
    assert "\n" not in msg and e.value.exit_code == 2
    assert msg.startswith(str(p)), msg
    assert says in msg, msg
    assert "s3cr" not in msg and "10.0.0.5" not in msg          # no URL, no secret


def test_files_that_are_not_configs(tmp_path):
    for text, says in [("", "must be a mapping"), ("- a\n- b\n", "must be a mapping"),
                       ("cameras: []\n", "cameras: must be a list of cameras")]:
        with pytest.raises(UserError) as e:
            load(write(tmp_path, text), environ={})
        assert says in e.value.message and "\n" not in e.value.message
    with pytest.raises(UserError) as e:
        load(tmp_path / "missing.yaml")
    assert e.value.message.endswith("missing.yaml: no such file")
    big = write(tmp_path, "#" * 1_100_000)
    with pytest.raises(UserError) as e:
        load(big)
    assert "larger than" in e.value.message


def test_hostile_yaml_stays_bounded(tmp_path):
    """An alias bomb (10⁹ strings by reference) as a wrong value: refused in one short line
    without expanding it."""
    levels = ["&l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    p = write(tmp_path, f"defaults:\n  threshold: [{', '.join(levels)}]\n"
                        "cameras: [{name: a, url: '0'}]\n")
    with pytest.raises(UserError) as e:
        load(p, environ={})
    msg = e.value.message
    assert "defaults.threshold: must be a number" in msg and len(msg) < 300 and "\n" not in msg


def cams(*cameras, budget=None):
    from vd.live.camconfig import CamerasConfig

    return CamerasConfig("c.yaml", tuple(cameras), budget)


def test_reload_diff():
    a, b, c = Camera("a", "rtsp://h/a"), Camera("b", "rtsp://h/b"), Camera("c", "rtsp://h/c")
    old = cams(a, b, c, Camera("off", "rtsp://h/off", enabled=False))
    same = diff(old, cams(a, b, c))
    assert not same and same.added == same.removed == same.changed == ()
    new = cams(Camera("a", "rtsp://u:newpw@h/a"),                       # a secret changed
               Camera("b", "rtsp://h/b", retain_days=7.0),              # retention only
               Camera("c", "rtsp://h/c", enabled=False),                # disabled: stops
               Camera("off", "rtsp://h/off"),                           # enabled: starts
               Camera("d", "rtsp://h/d", threshold=0.9))                # new
    d = diff(old, new)
    assert [x.name for x in d.added] == ["off", "d"]
    assert [x.name for x in d.removed] == ["c"]
    assert [(o.name, n.url) for o, n in d.changed] == [("a", "rtsp://u:newpw@h/a")]
    assert d.retention_changed
    t = diff(cams(a), cams(Camera("a", "rtsp://h/a", smoothing=(3, 4))))
    assert [n.smoothing for _, n in t.changed] == [(3, 4)] and not t.retention_changed
    assert diff(cams(a), cams(a, budget=5.0)).retention_changed
    first = diff(None, old)
    assert [x.name for x in first.added] == ["a", "b", "c"]


def test_redact_url():
    assert redact_url("rtsp://user:pw@host:554/x") == "rtsp://user:***@host:554/x"
    assert redact_url("rtsp://host/x") == "rtsp://host/x"
    assert redact_url("rtsp://u:p@ss:w@host/a@b") == "rtsp://u:***@host/a@b"   # an unescaped @


def test_what_a_camera_leaves_unset_is_the_runs_saved_alarm_and_the_command_line_wins():
    """A camera's alarm: its own values, else the file's defaults, else the run's saved alarm
    (as for sources on the command line); --threshold/--smooth/--cooldown win for all."""
    from vd.live.session import LiveConfig, camera_settings
    from vd.model.runconfig import AlarmConfig

    saved = AlarmConfig(0.42, 3, 5, 9.0)
    bare = Camera("a", "rtsp://h/a")
    own = Camera("b", "rtsp://h/b", threshold=0.8, smoothing=(1, 1), cooldown=2.0)
    s = camera_settings(bare, LiveConfig(), saved)
    assert (s.threshold, s.k, s.n, s.cooldown) == (0.42, 3, 5, 9.0)
    s = camera_settings(own, LiveConfig(), saved)
    assert (s.threshold, s.k, s.n, s.cooldown) == (0.8, 1, 1, 2.0)
    s = camera_settings(own, LiveConfig(threshold=0.6, smooth="2/4", cooldown=7.0), saved)
    assert (s.threshold, s.k, s.n, s.cooldown) == (0.6, 2, 4, 7.0)
