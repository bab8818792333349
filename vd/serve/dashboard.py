"""``GET /``: the dashboard's one static page (no token: it holds no data; it asks for the
token and sends it with each call). Its assets are mounted at ``/static`` by the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter()


@router.get("/")
async def index():
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-store"})
