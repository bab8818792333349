"""The FastAPI app of ``vd serve``: :func:`create_app` over one :class:`Service`.

Endpoints (JSON unless said; every one needs ``Authorization: Bearer TOKEN`` when the server
has a token, except ``/healthz``, ``/readyz`` and the dashboard's static page ``/`` and
``/static/*``, which carry no data):

- ``POST /v1/predict`` — multipart field ``file``; ``window``, ``stride``, ``tta`` as form
  fields or query parameters. The reply is the object ``vd predict FILE --json`` prints (with
  ``path``/``video`` the uploaded file's name). 413 past the size limit (counted while the body
  streams in), 408 when it stalls for 30 s, 415 when the content is not a video that decodes, 422 when it decodes but cannot
  be scored, 503 + ``Retry-After`` when the scoring queue is full or the model is loading.
- ``GET /v1/sources`` — per watched source: state, last score, lag, counters, recent scores.
- ``GET /v1/events?source=&since=`` — incidents (newest first) updated after ``since`` (unix
  seconds or ISO 8601); ``now`` in the reply is the next ``since``.
- ``GET /v1/events/{id}/snapshot`` (JPEG), ``/clip`` (MP4; ``?format=webm`` for browsers),
  ``POST /v1/events/{id}/review`` (``{"label": "violent" | "false alarm"}``).
- ``/healthz`` (the process answers), ``/readyz`` (model loaded; how many sources are live),
  ``/metrics`` (Prometheus text).

No traceback reaches a client: every error is ``{"error": "one line"}``.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from vd.errors import one_line
from vd.serve import auth
from vd.serve.files import inside, web_clip
from vd.serve.limits import UPLOAD_IDLE_S, Busy, Gate, UploadStalled, UploadTooLarge, limited_receive

STATIC = Path(__file__).resolve().parent / "static"


class Service:
    """What the endpoints share: the one predictor (loaded in the background), the scoring
    gate, the live side, the metrics and the limits."""

    def __init__(self, load, *, token=None, live=None, max_upload=64 * 2 ** 20, workers=1,
                 queue=4, log=print):
        from vd.serve.metrics import Metrics

        self._load = load
        self.token = token
        self.live = live
        self.max_upload = int(max_upload)
        self.gate = Gate(workers, queue)
        self.metrics = Metrics(live, self.gate)
        self.log = log
        self.predictor = None
        self.error: str | None = None
        self.on_fatal = lambda: None
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._load_now, name="vd-serve-load", daemon=True)
        self._thread.start()

    def _load_now(self) -> None:
        from vd.errors import UserError

        try:
            p = self._load()
        except UserError as e:
            self.error = e.message
        except Exception as e:  # noqa: BLE001 — one line, the server exits
            self.error = one_line(e, typed=True)
        else:
            self.predictor = p
            if self.live is not None:
                self.live.start(p)
            self.log("model loaded; ready")
            return
        self.log(f"error: {self.error}")
        self.on_fatal()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    # ------------------------------------------------------------------ scoring

    def score_file(self, path: Path, name: str, window, stride, tta: bool) -> tuple[int, dict]:
        """(status, body) for an uploaded file saved at ``path`` (runs in a worker thread)."""
        from vd.errors import UserError
        from vd.extract.frames import DecodeError, FrameSource
        from vd.extract.tta import TTAConfig
        from vd.score.predict import predict_paths

        try:  # content, not name: a container and codec that open, then a frame that decodes
            src = FrameSource(path)
        except DecodeError as e:
            self.metrics.clips.labels("undecodable").inc()
            return 415, {"error": f"not a video this server can decode: {one_line(e)}"}
        try:
            with src:
                first = next(iter(src), None)
        except DecodeError as e:
            first, why = None, one_line(e)
        else:
            why = "no frame decodes"
        if first is None:
            self.metrics.clips.labels("undecodable").inc()
            return 422, {"error": f"the video opens but cannot be decoded: {why}"}
        with self.gate.slot():
            p = copy.copy(self.predictor)
            p.tta = TTAConfig(enabled=bool(tta))
            p.explain = False
            try:
                res = predict_paths([str(path)], predictor=p, window=window, stride=stride)
            except UserError as e:
                return 422, {"error": e.message}
        if res.failures or not res.clips:
            self.metrics.clips.labels("failed").inc()
            why = res.failures[0].message if res.failures else "nothing scored"
            return 422, {"error": f"the video decodes but cannot be scored: {why}"}
        self.metrics.clips.labels("scored").inc()
        d = res.clips[0].to_dict()
        d.update(path=name, video=name, threshold=res.threshold,
                 threshold_source=res.threshold_source, calibrated=res.calibrated,
                 model=str(res.model), tta=res.tta["views"])
        return 200, d


def _bool(text, default: bool) -> bool:
    if text is None or str(text).strip() == "":
        return default
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"tta must be true or false, not {text!r}")


def _float(text, what):
    if text is None or str(text).strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number of seconds, not {text!r}") from None


def _since(text):
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"since must be unix seconds or ISO 8601, not {text!r}") from None


def _upload_name(name) -> str:
    base = Path(str(name or "upload")).name
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in base)[:200] or "upload"


def create_app(svc: Service):
    from contextlib import asynccontextmanager

    def err(status: int, text: str, headers=None):
        return JSONResponse({"error": text}, status_code=status, headers=headers)

    @asynccontextmanager
    async def lifespan(app):
        svc.start()
        yield
        await run_in_threadpool(svc.stop)

    app = FastAPI(title="vd serve", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        text = exc.detail if isinstance(exc.detail, str) else "request refused"
        return err(exc.status_code, text, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return err(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def crashed(request, exc):
        svc.log(f"internal error on {request.url.path}: {one_line(exc, typed=True)}")
        return err(500, "internal error (see the server's log)")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        if auth.needs_token(request.url.path) and not auth.authorized(
                request.headers.get("authorization"), svc.token):
            resp = err(401, "missing or wrong token (Authorization: Bearer TOKEN)",
                       {"WWW-Authenticate": "Bearer"})
        else:
            try:
                resp = await call_next(request)
            except Exception as exc:  # noqa: BLE001 — one line to the client, the rest to the log
                svc.log(f"internal error on {request.url.path}: {one_line(exc, typed=True)}")
                resp = err(500, "internal error (see the server's log)")
        if request.url.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-cache"  # revalidate: a new vd's page, not the old
        route = request.scope.get("route")
        label = getattr(route, "path", None) or ("/static" if request.url.path.startswith("/static/")
                                                 else "unmatched")
        svc.metrics.latency.labels(label, request.method, str(resp.status_code)).observe(
            time.perf_counter() - t0)
        return resp

    # ---------------------------------------------------------------- health, metrics

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    @app.get("/readyz")
    async def readyz():
        broken = svc.live is not None and svc.live.error is not None
        body = {"ready": svc.predictor is not None and not broken, "model": svc.predictor is not None}
        if svc.live is not None:
            body.update(svc.live.ready_counts())
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---------------------------------------------------------------- predict

    @app.post("/v1/predict")
    async def predict(request: Request):
        if svc.predictor is None:
            svc.metrics.rejected.labels("loading").inc()
            if svc.error:
                return err(503, f"the model could not be loaded: {svc.error}")
            return err(503, "the model is still loading", {"Retry-After": "5"})
        try:
            svc.gate.admit()
        except Busy:
            svc.metrics.rejected.labels("busy").inc()
            return err(503, "scoring queue full; retry later", {"Retry-After": "2"})
        tmp = None
        form = None
        try:
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > svc.max_upload:
                raise UploadTooLarge(svc.max_upload)
            ctype = request.headers.get("content-type", "")
            if not ctype.lower().startswith("multipart/form-data"):
                return err(415, "expected a multipart/form-data upload with a 'file' field")
            limited = Request(request.scope, receive=limited_receive(request.receive, svc.max_upload))
            try:
                form = await limited.form(max_files=1, max_fields=16)
            except (UploadTooLarge, UploadStalled):
                raise
            except Exception as e:  # noqa: BLE001 — not multipart, malformed parts
                return err(400, f"expected a multipart/form-data upload with a 'file' field ({one_line(e)})")
            up = form.get("file")
            if not isinstance(up, UploadFile):
                return err(422, "the multipart field 'file' is missing")
            q = request.query_params
            try:
                window = _float(form.get("window") or q.get("window"), "window")
                stride = _float(form.get("stride") or q.get("stride"), "stride")
                tta = _bool(form.get("tta") or q.get("tta"), True)
            except ValueError as e:
                return err(422, str(e))
            name = _upload_name(up.filename)
            tmp = Path(tempfile.mkdtemp(prefix="vd-serve-"))
            suffix = Path(name).suffix.lower()
            from vd.data.discover import VIDEO_EXTENSIONS

            path = tmp / ("upload" + (suffix if suffix in VIDEO_EXTENSIONS else ".mp4"))
            with open(path, "wb") as fh:
                while True:
                    chunk = await up.read(1 << 20)
                    if not chunk:
                        break
                    fh.write(chunk)
            await form.close()
            form = None
            status, body = await run_in_threadpool(svc.score_file, path, name, window, stride, tta)
            return JSONResponse(body, status_code=status)
        except UploadTooLarge as e:
            svc.metrics.rejected.labels("too_large").inc()
            return err(413, str(e), {"Connection": "close"})
        except UploadStalled:
            svc.metrics.rejected.labels("stalled").inc()
            return err(408, f"the upload sent nothing for {UPLOAD_IDLE_S:g} s", {"Connection": "close"})
        finally:
            if form is not None:
                await form.close()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            svc.gate.release()

    # ---------------------------------------------------------------- live

    def _public(inc: dict) -> dict:
        """An incident as the API shows it: file paths become this server's URLs."""
        d = {k: v for k, v in inc.items() if k not in ("snapshot", "clip", "type")}
        ident = inc["id"]
        d["snapshot"] = f"/v1/events/{ident}/snapshot" if inc.get("snapshot") else None
        ended = inc.get("state") == "ended"
        d["clip"] = f"/v1/events/{ident}/clip" if inc.get("clip") and ended else None
        return d

    @app.get("/v1/sources")
    async def sources():
        return {"sources": [] if svc.live is None else svc.live.sources(),
                "ready": svc.predictor is not None, "error": svc.error or (svc.live and svc.live.error)}

    @app.get("/v1/events")
    async def events(source: str | None = None, since: str | None = None):
        try:
            t = _since(since)
        except ValueError as e:
            return err(422, str(e))
        now = time.time()
        found = [] if svc.live is None else svc.live.incidents(source or None, t)
        return {"events": [_public(e) for e in found], "now": now}

    def _file(ident: str, key: str):
        inc = None if svc.live is None else svc.live.incident(ident)
        if inc is None:
            return None
        return inside(inc.get(key), [svc.live.clips_dir])

    @app.get("/v1/events/{ident}/snapshot")
    async def snapshot(ident: str):
        p = _file(ident, "snapshot")
        if p is None:
            return err(404, "no such snapshot")
        return FileResponse(p, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/v1/events/{ident}/clip")
    async def clip(ident: str, format: str = "mp4"):
        inc = None if svc.live is None else svc.live.incident(ident)
        p = _file(ident, "clip")
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

    @app.post("/v1/events/{ident}/review")
    async def review(ident: str, request: Request):
        try:
            body = await request.json()
            label = body.get("label") if isinstance(body, dict) else None
        except Exception:  # noqa: BLE001
            return err(422, 'send JSON: {"label": "violent" | "false alarm"}')
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

    # ---------------------------------------------------------------- dashboard

    @app.get("/")
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
