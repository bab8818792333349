"""How ``vd serve`` says no: every error is ``{"error": "one line"}``, never a traceback.

:func:`install` registers the handlers on the app: HTTP errors (404, 405, 401 from the token
dependency) and request validation keep their status with a one-line message; anything else
is a 500 whose details go to the log only (:class:`vd.serve.metrics.Observe` catches it).
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def err(status: int, text: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def install(app) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        text = exc.detail if isinstance(exc.detail, str) else "request refused"
        return err(exc.status_code, text, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return err(422, f"{where}: {first.get('msg', 'invalid request')}")
