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
