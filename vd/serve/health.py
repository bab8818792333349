"""``/healthz`` and ``/readyz`` (no token: they name nothing) and ``/metrics`` (token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vd.serve.deps import require_token, service

router = APIRouter()
metrics_router = APIRouter(dependencies=[Depends(require_token)])


@router.get("/healthz")
async def healthz():
    return {"ok": True}


@router.get("/readyz")
async def readyz(svc=Depends(service)):
    broken = svc.live is not None and svc.live.error is not None
    body = {"ready": svc.predictor is not None and not broken, "model": svc.predictor is not None}
    if svc.live is not None:
        body.update(svc.live.ready_counts())
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@metrics_router.get("/metrics")
async def metrics(svc=Depends(service)):
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
