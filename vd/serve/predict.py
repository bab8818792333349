"""``POST /v1/predict``: an uploaded clip scored as ``vd predict FILE --json`` would.

The order of the checks is the order of the costs: loading/ready (nothing read), the
declared length and content type (nothing read), the body streamed to disk under the size,
deadline and rate limits (:mod:`vd.serve.limits`, :mod:`vd.serve.upload`), the parameters'
syntax; only then does the request take a place in the scoring gate, and the clip is checked
and scored in a worker thread (:func:`vd.serve.scoring.score_upload`) while this handler
watches the connection: a client that goes away cancels its scoring.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from vd.serve.deps import require_token, service
from vd.serve.limits import Busy, ShuttingDown, UploadStalled, UploadTooLarge, limited_receive
from vd.errors import one_line
from vd.serve.replies import err
from vd.serve.scoring import Params, score_upload
from vd.serve.upload import BadUpload, receive_form

router = APIRouter(dependencies=[Depends(require_token)])

MULTIPART = "expected a multipart/form-data upload with a 'file' field"


@router.post("/v1/predict")
async def predict(request: Request, svc=Depends(service)):
    if svc.predictor is None:
        svc.metrics.rejected.labels("loading").inc()
        if svc.error:
            return err(503, f"the model could not be loaded: {svc.error}")
        return err(503, "the model is still loading", {"Retry-After": "5"})
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > svc.limits.max_upload:
        svc.metrics.rejected.labels("too_large").inc()
        return err(413, str(UploadTooLarge(svc.limits.max_upload)), {"Connection": "close"})
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return err(415, MULTIPART)
    tmp = await anyio.to_thread.run_sync(svc.upload_dir)
    try:
        got = await _receive(request, svc, tmp)
        if isinstance(got, Response):
            return got
        try:
            svc.gate.admit()  # only now: the body is on disk
        except Busy:
            svc.metrics.rejected.labels("busy").inc()
            return err(503, "scoring queue full; retry later", {"Retry-After": "2"})
        try:
            status, body = await _score_while_connected(request, svc, *got)
        finally:
            svc.gate.release()
        return JSONResponse(body, status_code=status)
    finally:
        await anyio.to_thread.run_sync(svc.remove_upload_dir, tmp)


async def _receive(request: Request, svc, tmp: Path):
    """The upload on disk under ``tmp``: (path, name, params), or the error response. At most
    ``limits.arriving`` bodies arrive at once (the disk they take is bounded)."""
    try:
        svc.arriving.admit()
    except Busy:
        svc.metrics.rejected.labels("busy").inc()
        return err(503, "too many uploads arriving at once; retry later", {"Retry-After": "2"})
    form = None
    try:
        receive = limited_receive(request.receive, svc.limits, svc.closing)
        form = await receive_form(request, receive, tmp / "upload.bin")
        up = form.get("file")
        if up is None or isinstance(up, str):
            return err(422, "the multipart field 'file' is missing")
        name = _upload_name(up.filename)
        path = tmp / ("upload" + _suffix(name))
        await anyio.to_thread.run_sync(Path(tmp / "upload.bin").rename, path)
        return path, name, _params(form, request.query_params)
    except UploadTooLarge as e:
        svc.metrics.rejected.labels("too_large").inc()
        return err(413, str(e), {"Connection": "close"})
    except UploadStalled:
        svc.metrics.rejected.labels("stalled").inc()
        lim = svc.limits
        return err(408, f"the upload did not arrive in time (whole within "
                        f"{lim.body_deadline_s:g} s, at least {lim.body_min_rate / 1024:g} KiB/s "
                        f"after the first {lim.body_grace_s:g} s)", {"Connection": "close"})
    except ShuttingDown:
        return err(503, "the server is stopping", {"Connection": "close"})
    except BadUpload as e:
        return err(400, f"{MULTIPART} ({one_line(e)})")
    except ValueError as e:
        return err(422, str(e))
    finally:
        svc.arriving.release()
        if form is not None:
            await form.close()


async def _score_while_connected(request: Request, svc, path: Path, name: str, params: Params):
    """Score in one of the service's scoring threads; a client that disconnects (or the server stopping) cancels
    it at its next backbone batch or classifier call."""
    gone = threading.Event()

    def cancelled():
        if svc.stopping.is_set():
            return 503, "the server is stopping"
        if gone.is_set():
            return 499, "the client went away"
        return None

    async def watch():
        # the body was read: the next message is the disconnect (a server that sends empty
        # body messages meanwhile is polled, not spun on)
        while (await request.receive())["type"] != "http.disconnect":
            await anyio.sleep(0.1)
        gone.set()

    job = functools.partial(score_upload, svc, path, name, params, cancelled)
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        status, body = await asyncio.wrap_future(svc.scoring.submit(job))
        tg.cancel_scope.cancel()
    return status, body


def _params(form, query) -> Params:
    return Params(window=_float(form.get("window") or query.get("window"), "window"),
                  stride=_float(form.get("stride") or query.get("stride"), "stride"),
                  tta=_bool(form.get("tta") or query.get("tta"), True))


def _bool(text, default: bool) -> bool:
    if text is None or str(text).strip() == "":
        return default
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"tta must be true or false, not {str(text)[:40]!r}")


def _float(text, what):
    if text is None or str(text).strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number of seconds, not {str(text)[:40]!r}") from None


def _upload_name(name) -> str:
    base = Path(str(name or "upload")).name
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in base)[:200] or "upload"


def _suffix(name: str) -> str:
    from vd.data.discover import VIDEO_EXTENSIONS

    suffix = Path(name).suffix.lower()
    return suffix if suffix in VIDEO_EXTENSIONS else ".mp4"
