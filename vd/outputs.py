"""Where vd writes: never destroy what is there unless it is vd's own output of the same kind.

Every command that writes a file or folder first calls :func:`check_output` on its target.
Whatever kind is asked for, vd never writes into or replaces a FIFO, a character or block
device, a socket (also when a symbolic link leads there), a dangling or looping link, a folder
where a file belongs or a file where a folder belongs: one line (:class:`vd.errors.UserError`,
exit 2) and the target is left as it was (same bytes, same inode, a device stays a device).

An existing target of the right type is vd's own kind when its content says so:

| kind        | what vd writes there                         | file or folder | own kind when it is                                    | exists, no --overwrite |
| ----------- | -------------------------------------------- | -------------- | ------------------------------------------------------ | ---------------------- |
| store       | a feature store (extract, merge)             | file           | an HDF5 file with a ``vd_schema`` attribute            | used (resume, replace) |
| bundle      | a model bundle (export)                      | file           | a zip whose manifest.json says ``vd-bundle``           | refused                |
| onnx        | an ONNX graph (export --format onnx)         | file           | a protobuf starting with ONNX's ``ir_version`` field   | refused                |
| tflite      | a TFLite graph (export --format tflite)      | file           | a flatbuffer with the ``TFL3`` identifier              | refused                |
| savedmodel  | a TensorFlow SavedModel (export)             | folder         | a folder holding ``saved_model.pb``                    | refused                |
| png         | a plot (--timeline, report plots)            | file           | a PNG image                                            | replaced               |
| report      | evaluate --report                            | folder         | a folder holding metrics.json or checkpoints.json      | files replaced         |
| events      | watch/serve event log (JSON lines)           | file           | a file whose first line is a JSON object               | appended to            |
| scores      | watch/serve score log (JSON lines)           | file           | a file whose first line is a JSON object               | appended to            |
| clips       | watch/serve incident clips                   | folder         | any folder                                             | added to               |
| spool       | watch/serve undelivered webhook events       | folder         | any folder                                             | added to               |
| sheets      | predict --explain=DIR contact sheets         | folder         | any folder                                             | added to               |
| compare     | compare --out (runs and compare tables)      | folder         | any folder                                             | added to               |
| run         | train --out (a run folder)                   | folder         | a folder holding config.json                           | resumed, replaced      |

An empty regular file (a file kind) or an empty folder (a folder kind) holds nothing to lose
and counts as absent. Anything else that exists is refused, with or without ``--overwrite``:
``--overwrite`` replaces only vd's own kind. In a report or compare folder, the names vd
writes there must be plain files (not links, FIFOs or folders). Only a bounded head of a file is read (a FIFO or
device is never opened).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vd.errors import UserError

HEAD_BYTES = 4096             # bytes read from an existing file to tell its kind
FIRST_LINE_MAX = 1 << 20      # a JSON-lines file whose first line is longer is not vd's
MANIFEST_MAX = 1 << 20        # a bundle whose manifest.json is larger is not vd's
REPORT_FILES = ("metrics.json", "clips.csv", "confusion.png", "roc.png",
                "checkpoints.json", "checkpoints.csv")
COMPARE_FILES = ("compare.csv", "compare.md", "val_clips.txt")

_HDF5 = b"\x89HDF\r\n\x1a\n"
_PNG = b"\x89PNG\r\n\x1a\n"
_ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class Kind:
    """One kind of output: ``test`` returns None for vd's own kind, else a few words why not
    (given the path and, for a file, its first :data:`HEAD_BYTES` bytes)."""

    name: str
    what: str
    folder: bool
    needs_overwrite: bool     # an existing one is replaced only with --overwrite
    test: Callable[[Path, bytes], str | None]
    head_bytes: int = HEAD_BYTES


def _store(path: Path, head: bytes) -> str | None:
    if not head.startswith(_HDF5):
        return "not an HDF5 file"
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return None if "vd_schema" in f.attrs else "an HDF5 file without vd_schema"
    except Exception:  # noqa: BLE001 - any failure to read it means "not provably vd's"
        return "an unreadable HDF5 file"


def _bundle(path: Path, head: bytes) -> str | None:
    if not head.startswith(_ZIP):
        return "not a zip file"
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("manifest.json")
            if info.file_size > MANIFEST_MAX:
                return "a zip file whose manifest.json is too large"
            manifest = json.loads(zf.read(info).decode("utf-8"))
    except KeyError:
        return "a zip file without manifest.json"
    except Exception:  # noqa: BLE001 - damaged zip, bad JSON, bad UTF-8
        return "a zip file with an unreadable manifest.json"
    if not isinstance(manifest, dict) or manifest.get("format") != "vd-bundle":
        return "a zip file that is not a vd bundle"
    return None


def _onnx(path: Path, head: bytes) -> str | None:
    # ModelProto serialised in field order: ir_version (field 1, varint) comes first, then
    # producer_name/producer_version/domain/model_version/doc_string/graph (fields 2..7)
    ok = len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] < 0x80 and head[2] in (
        0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42)
    return None if ok else "not an ONNX model"


def _tflite(path: Path, head: bytes) -> str | None:
    return None if head[4:8] == b"TFL3" else "not a TFLite model"


def _png(path: Path, head: bytes) -> str | None:
    return None if head.startswith(_PNG) else "not a PNG image"


def _json_lines(path: Path, head: bytes) -> str | None:
    line = head.split(b"\n", 1)[0]
    if len(line) > FIRST_LINE_MAX:
        return f"its first line is longer than {FIRST_LINE_MAX} bytes"
    try:
        first = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "its first line is not JSON"
    return None if isinstance(first, dict) else "its first line is not a JSON object"


def _savedmodel(path: Path, head: bytes) -> str | None:
    pb = path / "saved_model.pb"
    return None if pb.is_file() and not pb.is_symlink() else "a folder without saved_model.pb"


def _not_plain(path: Path, names) -> str | None:
    """Why one of ``names`` in the folder ``path`` is not a plain file (None: all are or are
    absent): vd writes those names, and would follow a link or wait on a FIFO."""
    for name in names:
        try:
            mode = os.lstat(path / name).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            return f"its {name} is {_type_name(mode)}, not a plain file"
    return None


def _report(path: Path, head: bytes) -> str | None:
    why = _not_plain(path, REPORT_FILES)
    if why or (path / "metrics.json").exists() or (path / "checkpoints.json").exists():
        return why
    return "a folder that holds no vd report (no metrics.json or checkpoints.json)"


def _compare(path: Path, head: bytes) -> str | None:
    return _not_plain(path, COMPARE_FILES)


def _run(path: Path, head: bytes) -> str | None:
    why = _not_plain(path, ("config.json",))
    if why or (path / "config.json").exists():
        return why
    return "a folder that is not a vd run (no config.json)"


def _any_folder(path: Path, head: bytes) -> str | None:
    return None


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("store", "a vd feature store", False, False, _store),
    Kind("bundle", "a vd model bundle", False, True, _bundle),
    Kind("onnx", "an ONNX model", False, True, _onnx),
    Kind("tflite", "a TFLite model", False, True, _tflite),
    Kind("savedmodel", "a SavedModel folder", True, True, _savedmodel),
    Kind("png", "a PNG image", False, False, _png),
    Kind("report", "a vd report folder", True, False, _report),
    Kind("events", "a JSON-lines events file", False, False, _json_lines, FIRST_LINE_MAX + 1),
    Kind("scores", "a JSON-lines scores file", False, False, _json_lines, FIRST_LINE_MAX + 1),
    Kind("clips", "a clips folder", True, False, _any_folder),
    Kind("spool", "a spool folder (webhook or MQTT events waiting to be sent)", True, False, _any_folder),
    Kind("sheets", "a contact-sheet folder", True, False, _any_folder),
    Kind("compare", "a compare folder", True, False, _compare),
    Kind("run", "a vd run folder", True, False, _run),
)}


_TYPE_NAMES = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _type_name(mode: int) -> str:
    return next((name for test, name in _TYPE_NAMES if test(mode)), "a special file")


def _head(path: Path, limit: int) -> tuple[int, bytes]:
    """(size, first bytes) of a regular file, opened without blocking and re-checked by
    ``fstat`` (a FIFO swapped in after the ``stat`` is refused, never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(_type_name(st.st_mode))
        chunks, left = [], limit if st.st_size else 0
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return st.st_size, b"".join(chunks)
    finally:
        os.close(fd)


def _stat(p: Path) -> tuple[os.stat_result | None, str]:
    """The target's stat (links followed; None = nothing there) and how to name what it is."""
    try:
        lst = os.lstat(p)
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as e:  # a file where a folder of the path should be, NUL, ...
        raise UserError(f"output not writable: {p} ({getattr(e, 'strerror', None) or e})") from None
    if not stat.S_ISLNK(lst.st_mode):
        return lst, ""
    try:
        target = os.readlink(p)
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{p} is a symbolic link to nothing ({target}); vd does not write "
                        f"through it: remove it or choose another path") from None
    except OSError as e:
        raise UserError(f"{p} is a symbolic link that cannot be followed ({e.strerror}); "
                        f"remove it or choose another path") from None
    return st, f"a symbolic link to {target}, "


def check_output(path, kind: str, *, overwrite: bool = False) -> bool:
    """May vd write ``kind`` at ``path``? True: vd's own output of that kind is there (the
    caller resumes, appends to or replaces it); False: nothing there (absent, or an empty file
    or folder). Raises :class:`UserError` (one line, exit 2) for anything else, and for an
    existing output of a kind that is replaced only with ``overwrite`` when it is False. Reads
    at most a bounded head of the target; never opens a FIFO or device; changes nothing.
    """
    k = KINDS.get(kind)
    if k is None:
        raise ValueError(f"unknown output kind {kind!r} (one of {', '.join(KINDS)})")
    p = Path(path)
    st, via = _stat(p)
    if st is None:
        return False
    mode = st.st_mode
    leave = "vd leaves it alone: choose another path" + ("" if overwrite else " (or remove it yourself)")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(f"{p} is {via}{_type_name(mode)}, not {k.what}; vd never writes to or "
                        f"replaces one: choose another path")
    if stat.S_ISDIR(mode) != k.folder:
        want = "a folder" if k.folder else "a file name"
        raise UserError(f"{p} is {via}{_type_name(mode)}, not {k.what}; give {want}")
    if k.folder:
        try:
            empty = not any(os.scandir(p))
        except OSError as e:
            raise UserError(f"cannot use output {p}: {e.strerror}") from None
        if empty:
            return False
        why = k.test(p, b"")
    else:
        try:
            size, head = _head(p, k.head_bytes)
        except IsADirectoryError as e:
            raise UserError(f"{p} is {via}{e}, not {k.what}; vd never writes to or replaces "
                            f"one: choose another path") from None
        except OSError as e:
            raise UserError(f"cannot use output {p}: {e.strerror}") from None
        if size == 0:
            return False
        why = k.test(p, head)
    if why is not None:
        only = f"--overwrite replaces only {k.what}; " if overwrite else ""
        raise UserError(f"{p} exists and is not {k.what} ({via}{why}); {only}{leave}")
    if k.needs_overwrite and not overwrite:
        raise UserError(f"{p} exists ({k.what}); pass --overwrite to replace it")
    return True
