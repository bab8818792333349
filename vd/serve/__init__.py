"""``vd serve``: an HTTP API, a live dashboard and Prometheus metrics around one loaded model.

The app (:mod:`~vd.serve.app`, a short factory) is routers, one per concern:
:mod:`~vd.serve.predict`, :mod:`~vd.serve.events`, :mod:`~vd.serve.sources`,
:mod:`~vd.serve.health`, :mod:`~vd.serve.dashboard` (``static/`` is package data), over one
:class:`~vd.serve.service.Service`. Around them: :mod:`~vd.serve.auth` (bind rules, bearer
token) and :mod:`~vd.serve.deps` (the token as a router dependency), :mod:`~vd.serve.limits`
(sizes, times, the scoring gate), :mod:`~vd.serve.upload` (multipart straight to disk),
:mod:`~vd.serve.probe` (container headers read before decoding), :mod:`~vd.serve.scoring`
(checked, cancellable scoring of an upload), :mod:`~vd.serve.files` (files only from vd's own
folder), :mod:`~vd.serve.metrics` (Prometheus), :mod:`~vd.serve.server` (uvicorn),
:mod:`~vd.serve.live` (the watch engine in a background thread).
"""
