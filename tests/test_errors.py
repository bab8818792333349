"""vd/errors.py: the one-line text of an exception, as every vd message and log shows it."""

from vd.errors import UserError, one_line


def test_one_line_collapses_lines_and_cuts():
    e = ValueError("Graph execution error:\n\n  Detected at node 'x'\n\tshape mismatch")
    assert one_line(e) == "Graph execution error: Detected at node 'x' shape mismatch"
    assert one_line(OSError("a" * 1000)) == "a" * 300
    assert one_line(OSError("a" * 1000), 10) == "a" * 10


def test_one_line_names_the_type_when_the_message_is_blank_or_asked():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("  \n ")) == "RuntimeError"
    assert one_line(OSError("disk\nfull"), typed=True) == "OSError: disk full"
    assert one_line(KeyError(), typed=True) == "KeyError"


def test_user_error_defaults_to_exit_2():
    assert UserError("x").exit_code == 2 and UserError("x", 3).exit_code == 3
