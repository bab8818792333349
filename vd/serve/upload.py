"""An upload's multipart body, streamed straight to a file on disk.

Starlette's parser keeps file parts in a spooled temporary file; here the one file part goes
into ``dest`` as it arrives (each write in a worker thread, never blocking the event loop), and
the other fields are small text (``max_part_size``). The body comes through
:func:`vd.serve.limits.limited_receive`, so it is size-, deadline- and rate-limited while it
streams.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

FIELD_BYTES = 1024   # a form field other than the file (window, stride, tta)


class BadUpload(Exception):
    """Not multipart, malformed parts, too many parts or fields."""


class _ToDisk(MultiPartParser):
    """Starlette's multipart parser with the file part written to ``dest`` (a real file, so
    :class:`UploadFile` writes it in a thread) instead of a spooled temporary file."""

    def __init__(self, headers, stream, dest: Path):
        super().__init__(headers, stream, max_files=1, max_fields=16, max_part_size=FIELD_BYTES)
        self.dest = dest

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if part.file is not None:
            part.file.file.close()  # the spooled file the parent made: unused
            fh = open(self.dest, "w+b")  # noqa: SIM115 — closed with the form (or on error)
            self._files_to_close_on_error[-1] = fh
            part.file = UploadFile(file=fh, size=0, filename=part.file.filename,
                                   headers=part.file.headers)


async def receive_form(request: Request, receive, dest: Path) -> FormData:
    """The form of ``request`` read through ``receive``; its file part is at ``dest``.
    Raises :class:`BadUpload` for a body that is not the multipart we expect (the receive's
    own exceptions — too large, too slow — pass through)."""
    limited = Request(request.scope, receive=receive)
    parser = _ToDisk(Headers(scope=request.scope), limited.stream(), dest)
    try:
        return await parser.parse()
    except MultiPartException as e:
        raise BadUpload(e.message) from None
    except (KeyError, ValueError) as e:
        raise BadUpload(str(e) or type(e).__name__) from None
