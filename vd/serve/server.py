"""The ASGI server under ``vd serve``: uvicorn, configured for an exposed service.

- its log lines go through vd's logging (``log_config=None``; its loggers get the ``vd``
  logger's handlers, so ``--log-format json`` covers them too);
- at most ``limits.connections`` connections and requests at once (uvicorn's
  ``limit_concurrency``: beyond it, 503);
- a signal (SIGTERM, Ctrl-C) first tells the :class:`~vd.serve.service.Service`, which cancels
  scoring and uploads in progress, so that the graceful shutdown is short and every upload's
  temporary folder is removed before the process exits.
"""

from __future__ import annotations

import logging

import uvicorn

GRACEFUL_S = 5  # the longest a request in progress may delay the exit after a signal


class _Server(uvicorn.Server):
    def __init__(self, config, svc):
        super().__init__(config)
        self.svc = svc

    def handle_exit(self, sig, frame) -> None:
        self.svc.shutdown()
        super().handle_exit(sig, frame)


def _route_uvicorn_logs() -> None:
    """uvicorn's loggers (``uvicorn.error``, …) write through the ``vd`` logger's handlers."""
    top = logging.getLogger("uvicorn")
    top.handlers = list(logging.getLogger("vd").handlers)
    top.propagate = False


def make_server(app, svc, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` over ``svc`` (``server.run()`` serves until a signal)."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=GRACEFUL_S,
                            limit_concurrency=svc.limits.connections, timeout_keep_alive=5)
    _route_uvicorn_logs()
    return _Server(config, svc)
