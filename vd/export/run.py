"""``vd export``'s one function, :func:`export_run`: a run (folder or bundle) → a bundle, or a
checked ONNX / TFLite / SavedModel graph (see :mod:`vd.export` for what each format holds).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.export.graphs import full_model, head_model, io_specs, keras_reference, probe_inputs
from vd.export.runtimes import run_export, write_graph
from vd.model.runconfig import DEFAULT_THRESHOLD

FORMATS = ("bundle", "onnx", "tflite", "savedmodel")
SUFFIXES = {".vdm": "bundle", ".onnx": "onnx", ".tflite": "tflite"}


@dataclass
class ExportResult:
    """What ``vd export`` wrote. ``check``: {runtime, max_abs_diff, inputs} or None."""

    format: str
    path: str
    source: str
    bytes: int
    with_backbone: bool = False
    inputs: list = field(default_factory=list)     # [{name, shape, dtype}]
    outputs: list = field(default_factory=list)
    calibrated: bool = False
    temperature: float = 1.0
    threshold: float = DEFAULT_THRESHOLD
    extractor: dict = field(default_factory=dict)
    check: dict | None = None
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def format_for(out, fmt: str | None) -> str:
    """``--format``, or the one ``out``'s suffix names (``.vdm`` bundle, ``.onnx``, ``.tflite``);
    anything else without ``--format`` is a bundle."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    return SUFFIXES.get(Path(out).suffix.lower(), "bundle")


def _backbone_for(run, weights):
    """The backbone the run's features came from (as ``vd predict`` rebuilds it)."""
    from vd.score.predict import backbone_settings, get_backbone

    spec, layer, w, seed, _ = backbone_settings(run, weights, f"the run {run.path}")
    return get_backbone(w, layer, seed, spec.name)


def export_run(model, out, *, fmt: str | None = None, with_backbone: bool = False,
               weights: str | None = None, overwrite: bool = False, check: bool = True,
               runs_root="runs") -> ExportResult:
    """Export the run ``model`` (run folder or bundle; None = newest under ``runs_root``) to
    ``out``. See :mod:`vd.export` for what each format holds. The run folder is validated
    (:func:`vd.model.runfolder.resolve_run`) before any model is built."""
    from vd import runtime
    from vd.model.loaded_run import load_run
    from vd.model.runfolder import resolve_run

    t0 = time.perf_counter()
    fmt = format_for(out, fmt)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    folder = resolve_run(model, runs_root)
    if fmt == "bundle":
        return _export_bundle(folder.path, out, with_backbone, t0)
    runtime.load_keras()
    run = load_run(folder)
    backbone = _backbone_for(run, weights) if with_backbone else None
    graph = full_model(run, backbone) if with_backbone else head_model(run)
    ins, outs = io_specs(graph)
    if fmt == "tflite":  # one clip a call (see vd.export)
        ins = [dict(i, shape=[1] + i["shape"][1:]) if not with_backbone else i for i in ins]
        outs = [dict(o, shape=[1] + o["shape"][1:]) for o in outs]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".tmp")
    _remove(tmp)
    try:
        write_graph(fmt, graph, tmp, run, with_backbone)
        checked = _check_written(fmt, tmp, run, backbone, with_backbone) if check else None
        _remove(out)
        tmp.replace(out)
    finally:
        _remove(tmp)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.stat().st_size
    from vd.model.bundle import extractor_identity

    return ExportResult(format=fmt, path=str(out), source=str(folder.path), bytes=int(size),
                        with_backbone=with_backbone, inputs=ins, outputs=outs,
                        calibrated=run.calibration is not None and run.temperature != 1.0,
                        temperature=float(run.temperature), threshold=float(run.threshold),
                        extractor=extractor_identity(run.config), check=checked,
                        seconds=time.perf_counter() - t0)


def _export_bundle(run_dir: Path, out: Path, with_backbone: bool, t0: float) -> ExportResult:
    from vd.model.bundle import describe, write_bundle

    if with_backbone:
        raise UserError("--with-backbone applies to onnx, tflite and savedmodel exports; a "
                        "bundle names its backbone and vd rebuilds it")
    manifest = write_bundle(run_dir, out)
    op = manifest["operating_point"]
    return ExportResult(format="bundle", path=str(out), source=str(run_dir),
                        bytes=out.stat().st_size, calibrated=op["temperature"] != 1.0,
                        temperature=op["temperature"], threshold=op["threshold"],
                        extractor=manifest["extractor"], seconds=time.perf_counter() - t0,
                        notes=[describe(manifest)])


def _check_written(fmt: str, path: Path, run, backbone, with_backbone: bool) -> dict:
    """Run the written file on probe inputs: {runtime, max_abs_diff (vs Keras), inputs}."""
    x = probe_inputs(run, backbone)
    ref = keras_reference(run, backbone, x)
    got = run_export(fmt, path, x, with_backbone)
    diff = float(np.max(np.abs(np.asarray(got, np.float64) - ref)))
    return {"runtime": {"onnx": "onnxruntime", "tflite": "tflite interpreter",
                        "savedmodel": "tensorflow"}[fmt],
            "max_abs_diff": diff, "inputs": int(len(x))}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
