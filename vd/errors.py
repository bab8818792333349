"""One exception type for problems the user can fix.

The CLI prints its message as one line and exits with its status (2 unless said otherwise);
every other exception is a bug and shows a traceback only with ``--debug``.
"""


class UserError(Exception):
    """A problem with the user's input, options or files: one line, a non-zero exit."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(e: BaseException, limit: int = 300, *, typed: bool = False) -> str:
    """``str(e)`` as one line for an error message or a log record: every run of whitespace
    (newlines included) becomes one space, cut to ``limit`` characters; the exception's type
    name when the message is blank. ``typed`` puts the type name first (``OSError: ...``).
    The one helper vd uses wherever an exception's text reaches a user."""
    text = " ".join(str(e).split())[:limit]
    if not text:
        return type(e).__name__
    return f"{type(e).__name__}: {text}" if typed else text
