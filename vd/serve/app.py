"""The FastAPI app of ``vd serve``: :func:`create_app` puts the routers together over one
:class:`~vd.serve.service.Service`.

Routers, one per concern: :mod:`~vd.serve.predict` (``POST /v1/predict``),
:mod:`~vd.serve.events` (incidents, their snapshot and clip, reviews),
:mod:`~vd.serve.sources` (``GET /v1/sources``), :mod:`~vd.serve.health` (``/healthz``,
``/readyz``, ``/metrics``) and :mod:`~vd.serve.dashboard` (``/`` and ``/static``). Every router
that carries data has the token check (:func:`vd.serve.deps.require_token`) as its
dependency; ``/healthz``, ``/readyz`` and the dashboard's static page do not need it. No
traceback reaches a client: every error is ``{"error": "one line"}`` (:mod:`~vd.serve.replies`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vd.serve import dashboard, events, health, predict, replies, sources
from vd.serve.dashboard import STATIC
from vd.serve.metrics import Observe
from vd.serve.service import Service

__all__ = ["STATIC", "Service", "create_app"]


def create_app(svc: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        svc.start()
        try:
            yield
        finally:
            await run_in_threadpool(svc.stop)

    app = FastAPI(title="vd serve", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.svc = svc
    replies.install(app)
    for router in (health.router, health.metrics_router, predict.router, sources.router,
                   events.router, dashboard.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Observe, metrics=svc.metrics)
    return app
