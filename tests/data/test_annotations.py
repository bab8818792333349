"""Annotated recordings: vd's CSV, UCF-Crime's and XD-Violence's files read to the same intervals;
bad rows are one line naming the file and line."""

import pytest

from vd.data.annotations import match_recordings, read_annotations, to_seconds
from vd.errors import UserError

FPS = 25.0
VIDEOS = ["street/Fighting003_x264.mp4", "street/Normal_Videos_001_x264.mp4", "bar/v=abc__#1_label_B1-0-0.mp4"]


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def _seconds(ann):
    m = match_recordings(ann, VIDEOS)
    return {v: [tuple(round(x, 6) for x in iv) for iv in to_seconds(ivs, FPS)] for v, ivs in m.items()}


def test_three_formats_read_to_the_same_intervals(tmp_path):
    # frames 250..499 at 25 fps = [10 s, 20 s); frames 1000..1124 = [40 s, 45 s)
    csv = _write(tmp_path, "a.csv", "video,start_s,end_s\n# a comment\n"
                 "street/Fighting003_x264.mp4,10,20\nstreet/Fighting003_x264.mp4,40,45\n"
                 "bar/v=abc__#1_label_B1-0-0.mp4,4,8\n")
    ucf = _write(tmp_path, "Temporal_Anomaly_Annotation.txt",
                 "Fighting003_x264.mp4  Fighting  250  499  1000  1124\n"
                 "Normal_Videos_001_x264.mp4  Normal  -1  -1  -1  -1\n"
                 "v=abc__#1_label_B1-0-0.mp4  Fighting  100  199  -1  -1\n")
    xd = _write(tmp_path, "annotations.txt",
                "Fighting003_x264 250 499 1000 1124\nv=abc__#1_label_B1-0-0 100 199\n")
    got = [(_seconds(read_annotations(p)), read_annotations(p).format) for p in (csv, ucf, xd)]
    assert [fmt for _, fmt in got] == ["csv", "ucf-crime", "xd-violence"]
    expected = {"street/Fighting003_x264.mp4": [(10.0, 20.0), (40.0, 45.0)],
                "street/Normal_Videos_001_x264.mp4": [],
                "bar/v=abc__#1_label_B1-0-0.mp4": [(4.0, 8.0)]}
    for intervals, _ in got:
        assert intervals == expected


@pytest.mark.parametrize("text, where", [
    ("video,start_s,end_s\nstreet/Fighting003_x264.mp4,10\n", "a.csv:2"),
    ("street/Fighting003_x264.mp4,ten,20\n", "a.csv:1"),
    ("street/Fighting003_x264.mp4,30,20\n", "a.csv:1"),
    ("street/Fighting003_x264.mp4,nan,20\n", "a.csv:1"),
    ("ok,1,2\n" + "x" * 5000 + "\n", "a.csv:2"),
])
def test_bad_rows_name_file_and_line(tmp_path, text, where):
    p = _write(tmp_path, "a.csv", text)
    with pytest.raises(UserError) as e:
        read_annotations(p)
    assert where in e.value.message and "\n" not in e.value.message


def test_binary_junk_unknown_names_and_ambiguous_names(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(UserError, match="not a text file"):
        read_annotations(junk)
    with pytest.raises(UserError, match="matches no recording"):
        match_recordings(read_annotations(_write(tmp_path, "b.csv", "nope.mp4,1,2\n")), VIDEOS)
    two = ["a/x.mp4", "b/x.mp4"]
    with pytest.raises(UserError, match="matches 2 recordings"):
        match_recordings(read_annotations(_write(tmp_path, "c.csv", "x.mp4,1,2\n")), two)
    with pytest.raises(UserError, match="frame rate"):
        to_seconds(read_annotations(_write(tmp_path, "d.txt", "x 1 2\n")).intervals["x"], 0)
