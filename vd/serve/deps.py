"""The routers' dependencies: the process's :class:`~vd.serve.service.Service`, and the token
check (one dependency on every router that carries data)."""

from __future__ import annotations

from fastapi import HTTPException, Request

from vd.serve import auth


def service(request: Request):
    """The :class:`~vd.serve.service.Service` the app was made for."""
    return request.app.state.svc


async def require_token(request: Request) -> None:
    """401 (``WWW-Authenticate: Bearer``) unless the request carries the server's token."""
    if not auth.authorized(request.headers.get("authorization"), request.app.state.svc.token):
        raise HTTPException(401, "missing or wrong token (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
