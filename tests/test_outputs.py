"""vd/outputs.py: which existing targets vd may write, on real files, FIFOs and device nodes.

Every refusal is a one-line UserError (exit 2) and leaves the target as it was: same inode,
same bytes, a FIFO still a FIFO, a device node still the same device.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile

import numpy as np
import pytest

from vd.errors import UserError
from vd.outputs import FIRST_LINE_MAX, KINDS, check_output

FILE_KINDS = sorted(k for k, v in KINDS.items() if not v.folder)
FOLDER_KINDS = sorted(k for k, v in KINDS.items() if v.folder)


def fingerprint(path):
    """What must not change when vd refuses a target: type, inode, device number, bytes."""
    st = os.lstat(path)
    data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return (stat.S_IFMT(st.st_mode), st.st_ino, st.st_rdev, data)


def refused(path, kind, *words, overwrite=False):
    before = fingerprint(path)
    with pytest.raises(UserError) as e:
        check_output(path, kind, overwrite=overwrite)
    assert e.value.exit_code == 2
    assert "\n" not in e.value.message and str(path) in e.value.message
    for w in words:
        assert w in e.value.message, e.value.message
    assert fingerprint(path) == before
    return e.value.message


# --------------------------------------------------------------------------- own kinds, made for real


def make_store(path):
    from vd.data.store import write_plain_store

    write_plain_store(path, np.zeros((1, 2, 3), np.float16), [1], ["a.mp4"])
    return path


def make_bundle(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "vd-bundle", "bundle_schema": 1}))
        zf.writestr("model.keras", b"PK")
    return path


def make_onnx(path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              producer_name="tf2onnx")
    path.write_bytes(model.SerializeToString())
    return path


def make_tflite(path):
    # a flatbuffer: 4-byte root offset, then the file identifier
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    return path


def make_png(path):
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    assert ok
    path.write_bytes(png.tobytes())
    return path


def make_events(path):
    path.write_text(json.dumps({"event": "incident", "t": 1.0}) + "\n" + "{\"x\": 2}\n")
    return path


def make_savedmodel(path):
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"\x12\x00")
    (path / "variables").mkdir()
    return path


def make_report(path):
    path.mkdir()
    (path / "metrics.json").write_text("{}\n")
    (path / "clips.csv").write_text("path\n")
    return path


def make_run(path):
    path.mkdir()
    (path / "config.json").write_text('{"vd_run_schema": 1}\n')
    (path / "model.keras").write_bytes(b"PK")
    return path


def make_folder(path):
    path.mkdir()
    (path / "x.mp4").write_bytes(b"\x00")
    return path


MAKERS = {"store": make_store, "bundle": make_bundle, "onnx": make_onnx, "tflite": make_tflite,
          "png": make_png, "events": make_events, "scores": make_events,
          "savedmodel": make_savedmodel, "report": make_report, "clips": make_folder,
          "sheets": make_folder, "compare": make_folder, "spool": make_folder,
          "run": make_run}


def test_every_kind_has_a_maker():
    assert set(MAKERS) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_own_kind_is_accepted_and_other_kinds_refused(tmp_path, kind):
    own = MAKERS[kind](tmp_path / f"own-{kind}")
    assert check_output(own, kind, overwrite=True) is True
    if KINDS[kind].needs_overwrite:
        refused(own, kind, "--overwrite")
    else:
        assert check_output(own, kind) is True
    for other, make in MAKERS.items():
        if KINDS[other].folder != KINDS[kind].folder or make is MAKERS[kind]:
            continue
        if kind in ("clips", "sheets", "compare", "spool"):  # any folder: vd only adds files to it
            assert check_output(make(tmp_path / f"other-{other}"), kind) is True
            continue
        target = make(tmp_path / f"other-{other}")
        refused(target, kind, "is not", KINDS[kind].what, overwrite=False)
        refused(target, kind, f"--overwrite replaces only {KINDS[kind].what}", overwrite=True)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_nothing_there_is_free(tmp_path, kind):
    assert check_output(tmp_path / "absent", kind) is False
    if KINDS[kind].folder:
        (tmp_path / "empty").mkdir()
    else:
        (tmp_path / "empty").write_bytes(b"")
    assert check_output(tmp_path / "empty", kind) is False


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_text_file_is_refused_even_with_overwrite(tmp_path, kind):
    if kind in ("events", "scores"):
        text = "some notes\nnot json\n"
    else:
        text = "my thesis, chapter 3\n"
    f = tmp_path / "notes.txt"
    f.write_text(text)
    refused(f, kind, overwrite=False)
    refused(f, kind, overwrite=True)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fifo_device_and_socket_are_never_touched(tmp_path, kind):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(fifo, kind, "a FIFO", overwrite=True)
    if os.geteuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        refused(null, kind, "a character device", overwrite=True)
        assert os.major(os.lstat(null).st_rdev) == 1 and os.minor(os.lstat(null).st_rdev) == 3
    import socket

    sock_path = tmp_path / "s"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        refused(sock_path, kind, "a socket", overwrite=True)
    finally:
        s.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_link_to_a_fifo_or_to_nothing_is_refused(tmp_path, kind):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    msg = refused(link, kind, "symbolic link", "a FIFO", overwrite=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and str(fifo) in msg
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    refused(dangling, kind, "symbolic link to nothing", overwrite=True)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    refused(loop, kind, "cannot be followed", overwrite=True)


def test_a_link_to_own_kind_is_own_kind(tmp_path):
    store = make_store(tmp_path / "real.h5")
    link = tmp_path / "link.h5"
    link.symlink_to(store)
    assert check_output(link, "store") is True


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_folder_where_a_file_belongs(tmp_path, kind):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep").write_text("x")
    refused(d, kind, "a folder", "give a file name", overwrite=True)


@pytest.mark.parametrize("kind", FOLDER_KINDS)
def test_a_file_where_a_folder_belongs(tmp_path, kind):
    f = tmp_path / "f"
    f.write_text("x")
    refused(f, kind, "a file", "give a folder", overwrite=True)


def test_a_report_folder_with_a_link_or_fifo_in_a_name_vd_writes(tmp_path):
    report = make_report(tmp_path / "r")
    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n")
    (report / "clips.csv").unlink()
    (report / "clips.csv").symlink_to(victim)
    refused(report, "report", "clips.csv", "symbolic link")
    (report / "clips.csv").unlink()
    os.mkfifo(report / "roc.png")
    refused(report, "report", "roc.png", "FIFO")
    assert victim.read_text() == "precious\n"


def test_a_compare_folder_with_a_fifo_for_its_table(tmp_path):
    d = make_folder(tmp_path / "cmp")
    os.mkfifo(d / "compare.csv")
    refused(d, "compare", "compare.csv", "FIFO")


def test_a_folder_of_other_things_is_not_a_report(tmp_path):
    d = make_folder(tmp_path / "home")
    refused(d, "report", "no vd report")


def test_json_lines_first_line_rules(tmp_path):
    f = tmp_path / "e.jsonl"
    f.write_text('{"a": 1}')  # one object, no newline yet
    assert check_output(f, "events") is True
    f.write_text('[1, 2]\n{"a": 1}\n')
    refused(f, "events", "not a JSON object")
    f.write_bytes(b"\xff\xfe\x00garbage\n")
    refused(f, "scores", "not JSON")
    f.write_bytes(b'{"a": "' + b"x" * (FIRST_LINE_MAX + 10) + b'"}\n')
    refused(f, "scores", "longer than")


def test_a_foreign_hdf5_file_is_not_a_store(tmp_path):
    import h5py

    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.create_dataset("kernel", data=np.zeros(3))
    refused(tmp_path / "weights.h5", "store", "without vd_schema", overwrite=True)
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    refused(tmp_path / "bad.h5", "store", "unreadable HDF5", overwrite=True)


def test_a_keras_zip_is_not_a_bundle(tmp_path):
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as zf:
        zf.writestr("config.json", "{}")
    refused(tmp_path / "model.keras", "bundle", "without manifest.json", overwrite=True)


def test_unknown_kind_is_a_bug_not_a_user_error(tmp_path):
    with pytest.raises(ValueError):
        check_output(tmp_path / "x", "nonsense")


def test_a_path_through_a_file_is_not_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="output not writable: .*Not a directory"):
        check_output(tmp_path / "file" / "f.h5", "store")
