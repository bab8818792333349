"""Sources from the command line and --sources rows, shards, reconnect backoff."""

import pytest

from vd.data.discover import shard_of
from vd.errors import UserError
from vd.live.sources import Backoff, SourceSpec, collect


def test_names_and_csv_rows(tmp_path):
    csv = tmp_path / "cams.csv"
    csv.write_text("name,url\n# lobby is off\ndoor,rtsp://user:pw@10.0.0.5/s1\n\nyard,tcp://10.0.0.6:9000\n")
    specs = collect(["0", "videos/a.mp4", "rtsp://u:p@cam.local:554/x"], csv)
    assert [s.name for s in specs] == ["device0", "a.mp4", "cam.local:554/x", "door", "yard"]
    assert specs[3] == SourceSpec("door", "rtsp://user:pw@10.0.0.5/s1")
    assert specs[1].is_file and not specs[3].is_file


def test_shards_partition_the_rows_like_extract(tmp_path):
    csv = tmp_path / "cams.csv"
    names = [f"cam{i:02d}" for i in range(20)]
    csv.write_text("".join(f"{n},rtsp://h/{n}\n" for n in names))
    parts = [[s.name for s in collect([], csv, f"{i}/3")] for i in range(3) if
             any(shard_of(n, 3) == i for n in names)]
    assert sorted(sum(parts, [])) == names
    for i, part in enumerate(parts):
        assert all(shard_of(n, 3) == i for n in part)
    env = {"JOB_COMPLETION_INDEX": "1", "VD_SHARD_COUNT": "3"}
    assert [s.name for s in collect([], csv, "auto", environ=env)] == [n for n in names if shard_of(n, 3) == 1]


@pytest.mark.parametrize("args, rows, shard, msg", [
    ([], None, None, "give at least one SOURCE"),
    (["a.mp4", "x/a.mp4"], None, None, "two sources are named 'a.mp4'"),
    (["ftp://h/x"], None, None, "unsupported stream URL scheme"),
    (["a.mp4"], None, "0/2", "--shard splits --sources rows"),
    ([], "bad", None, "expected name,url"),
])
def test_bad_sources_are_one_line_errors(tmp_path, args, rows, shard, msg):
    csv = None
    if rows:
        csv = tmp_path / "c.csv"
        csv.write_text("door\n")
    with pytest.raises(UserError, match=msg):
        collect(args, csv, shard)


def test_backoff_doubles_up_to_its_cap_and_resets():
    b = Backoff(1.0, 2.0, 5.0)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.next() == 1.0


def test_k8s_watch_example_calls_real_options():
    from pathlib import Path

    import yaml
    from click.testing import CliRunner

    from vd.cli.watch import watch

    root = Path(__file__).resolve().parents[2]
    job = yaml.safe_load((root / "deploy" / "k8s-watch.yaml").read_text())
    spec = job["spec"]
    c = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert spec["completionMode"] == "Indexed" and int(env["VD_SHARD_COUNT"]) == spec["completions"]
    args = c["args"]
    assert args[0] == "watch" and args[args.index("--shard") + 1] == "auto"
    known = {o for p in watch.params for o in getattr(p, "opts", [])}
    assert {a for a in args[1:] if a.startswith("--")} <= known
