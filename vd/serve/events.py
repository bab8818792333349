"""Incidents: ``GET /v1/events``, their snapshot and clip, and ``POST …/review``.

Files are sent only from the clips folder (:func:`vd.serve.files.inside`); a review's body is
read with a cap (:data:`vd.serve.limits.SMALL_BODY`) and the upload's time limits, never whole.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from vd.serve.deps import require_token, service
from vd.serve.files import inside, web_clip
from vd.serve.limits import SMALL_BODY, ShuttingDown, UploadStalled, UploadTooLarge, limited_receive
from vd.errors import one_line
from vd.serve.replies import err

router = APIRouter(dependencies=[Depends(require_token)])
REVIEW_HOW = 'send JSON: {"label": "violent" | "false alarm"}'


def _since(text, name="since"):
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{name} must be unix seconds or ISO 8601, not {text[:40]!r}") from None


def _public(inc: dict) -> dict:
    """An incident as the API shows it: file paths become this server's URLs."""
    d = {k: v for k, v in inc.items() if k not in ("snapshot", "clip", "type")}
    ident = inc["id"]
    d["snapshot"] = f"/v1/events/{ident}/snapshot" if inc.get("snapshot") else None
    ended = inc.get("state") == "ended"
    d["clip"] = f"/v1/events/{ident}/clip" if inc.get("clip") and ended else None
    return d


@router.get("/v1/events")
async def events(source: str | None = None, since: str | None = None, until: str | None = None,
                 review: str | None = None, limit: int = 50, cursor: str | None = None,
                 svc=Depends(service)):
    try:
        t, u = _since(since), _since(until, "until")
    except ValueError as e:
        return err(422, str(e))
    now = time.time()
    store = None if svc.live is None else svc.live.store
    if store is not None:  # the event database: filtered, paged
        try:
            page = await run_in_threadpool(store.query, source=source or None, since=t, until=u,
                                           review=review or None, limit=limit, cursor=cursor or None)
        except ValueError as e:
            return err(422, one_line(e))
        return {"events": [_public(e) for e in page["events"]], "now": now, "cursor": page["cursor"]}
    found = [] if svc.live is None else svc.live.incidents(source or None, t)
    return {"events": [_public(e) for e in found], "now": now}


def _file(svc, ident: str, key: str):
    inc = None if svc.live is None else svc.live.incident(ident)
    if inc is None:
        return None, None
    return inc, inside(inc.get(key), [svc.live.clips_dir])


@router.get("/v1/events/{ident}/snapshot")
async def snapshot(ident: str, svc=Depends(service)):
    _, p = await run_in_threadpool(_file, svc, ident, "snapshot")
    if p is None:
        return err(404, "no such snapshot")
    return FileResponse(p, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/v1/events/{ident}/clip")
async def clip(ident: str, format: str = "mp4", svc=Depends(service)):
    inc, p = await run_in_threadpool(_file, svc, ident, "clip")
    if p is None or inc.get("state") != "ended":
        return err(404, "no such clip (or the incident has not ended)")
    if format == "webm":
        try:
            p = await run_in_threadpool(web_clip, p, svc.live.web_dir())
        except OSError as e:
            return err(500, f"cannot convert the clip: {one_line(e)}")
        return FileResponse(p, media_type="video/webm")
    if format != "mp4":
        return err(422, "format must be mp4 or webm")
    return FileResponse(p, media_type="video/mp4")


async def _small_json(request: Request, svc):
    """The request's JSON body, read through the upload limits with a cap of
    :data:`SMALL_BODY` bytes (raises :class:`UploadTooLarge`, :class:`UploadStalled`)."""
    limits = dataclasses.replace(svc.limits, max_upload=SMALL_BODY)
    receive = limited_receive(request.receive, limits, svc.closing)
    body = bytearray()
    async for chunk in Request(request.scope, receive=receive).stream():
        body += chunk
    return json.loads(bytes(body))


@router.post("/v1/events/{ident}/review")
async def review(ident: str, request: Request, svc=Depends(service)):
    length = request.headers.get("content-length")
    try:
        if length is not None and length.isdigit() and int(length) > SMALL_BODY:
            raise UploadTooLarge(SMALL_BODY)
        body = await _small_json(request, svc)
    except UploadTooLarge as e:
        return err(413, str(e), {"Connection": "close"})
    except (UploadStalled, ShuttingDown):
        return err(408, "the request body did not arrive in time", {"Connection": "close"})
    except ValueError:
        return err(422, REVIEW_HOW)
    label = body.get("label") if isinstance(body, dict) else None
    if svc.live is None:
        return err(404, "no such incident")
    try:
        row = await run_in_threadpool(svc.live.review, ident, label)
    except KeyError:
        return err(404, "no such incident")
    except ValueError as e:
        return err(422, str(e))
    except LookupError as e:
        return err(409, str(e))
    return row
