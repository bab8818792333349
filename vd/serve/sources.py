"""``GET /v1/sources``: the watched sources' state, scores, lag and counters."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from vd.serve.deps import require_token, service

router = APIRouter(dependencies=[Depends(require_token)])


@router.get("/v1/sources")
async def sources(svc=Depends(service)):
    return {"sources": [] if svc.live is None else svc.live.sources(),
            "ready": svc.predictor is not None, "error": svc.error or (svc.live and svc.live.error)}
