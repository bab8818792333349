"""vd.runtime.filter_native_logs: on a terminal, TensorFlow's C++ log lines (absl and older
formats) are dropped; Python's messages, progress redraws and tracebacks pass unchanged.

The child runs under a real pseudo-terminal (the filter is only for terminals) and writes the
lines TF writes, straight to file descriptor 2 as C++ code does."""

import os
import pty
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import os, sys
from vd import runtime
assert runtime.filter_native_logs()
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
os.write(2, b"E0000 00:00:1795783955.175118   11596 util.cc:131] oneDNN supports DT_INT32 only on "
            b"platforms with AVX-512. Falling back to the default Eigen-based implementation if present.\n")
os.write(2, b"I1127 12:45:08.123456   11596 port.cc:153] oneDNN custom operations are on.\n")
os.write(2, b"2025-01-08 14:55:59.249677: E tensorflow/core/util/util.cc:131] oneDNN supports DT_INT64\n")
os.write(2, b"other C output passes\n")
assert sys.stderr.isatty()  # progress bars still draw in place
print("vd: failed: a.mp4: cannot open", file=sys.stderr)
sys.stderr.write("\rextract 1/2"); sys.stderr.flush()
sys.stderr.write("\rextract 2/2\n"); sys.stderr.flush()
print("I0 is not a log line", file=sys.stderr)
raise SystemExit("vd: error: the last line")
'''


def run_on_a_terminal(env) -> tuple[str, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: stdin/stdout/stderr are the pty
        os.execve(sys.executable, [sys.executable, "-c", CHILD], env)
    out = b""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    return out.decode().replace("\r\n", "\n"), os.waitstatus_to_exitcode(status)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "VD_DEBUG")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def test_native_log_lines_are_dropped_and_everything_else_passes():
    text, status = run_on_a_terminal(_env())
    assert status == 1
    assert "oneDNN" not in text and "absl" not in text and "util.cc" not in text
    assert "other C output passes\n" in text  # C++ writes go through the filter's pipe,
    text = text.replace("other C output passes\n", "")  # so their order against Python's may vary
    assert text == ("vd: failed: a.mp4: cannot open\n\rextract 1/2\rextract 2/2\n"
                    "I0 is not a log line\nvd: error: the last line\n")


def test_vd_debug_or_a_user_log_level_leaves_stderr_alone():
    for extra in ({"VD_DEBUG": "1"}, {"TF_CPP_MIN_LOG_LEVEL": "0"}):
        text, status = run_on_a_terminal(_env(**extra))
        assert "AssertionError" in text and status == 1, extra  # the filter refused to start
