"""``vd serve``: an HTTP API, a live dashboard and Prometheus metrics around one loaded model.

Modules: :mod:`~vd.serve.auth` (bind rules, bearer token), :mod:`~vd.serve.limits` (upload
size while streaming, bounded scoring), :mod:`~vd.serve.files` (paths served only from vd's own
folders), :mod:`~vd.serve.metrics` (Prometheus registry), :mod:`~vd.serve.live` (the watch
engine in a background thread: per-source state, incidents, reviews), :mod:`~vd.serve.app`
(the FastAPI app factory). The dashboard is ``static/`` (package data).
"""
