"""Stage three driver: raw video → the model's violent probability, with test-time augmentation.

:class:`Predictor` loads a run folder once (``vd.model.scoring.load_run``), checks that the
features it would compute are the features the model was trained on (the run's recorded
extractor: backbone, layer, weights, frames, image size, preprocessing — one line naming the
attribute that differs otherwise), and scores clips:

1. decode and sample exactly as stage one did (``vd.extract.clips.decode_clip``, variant 0:
   ``frames`` uniform segment midpoints of the frames that really decode);
2. make the TTA views (:mod:`vd.extract.tta`; five, or the original only with ``tta=False``);
3. all views of a clip through the run's backbone (the one its store recorded, rebuilt from
   :mod:`vd.extract.registry`) in one batched pass (5 × 20 = 100 frames) -- on a CPU in
   calls of at most :func:`frames_per_call` frames, which bounds the activations held at once;
4. features rounded to float16, as the store keeps them, then the model, one row per view;
5. the clip's score is the mean of the views' violent probabilities (calibrated when the run
   has calibration.json: ``PredictResult.calibrated``); label 1 = violent and ``alarm`` when
   the score ≥ the threshold (``--threshold``, else the run's: 0.5, or the one
   ``vd evaluate --save-threshold`` stored; ``PredictResult.threshold_source`` says which).

With ``explain``, each clip also carries the model's attention weight per sampled frame (the
original view's; :mod:`vd.score.explain`).

:func:`predict_paths` is the function the CLI and the demo call: paths in, a
:class:`PredictResult` (plain data) out. With ``window`` set, each clip gets a timeline
(:mod:`vd.score.timeline`). A clip that cannot be decoded becomes a :class:`Failure` with a
one-line reason and the others go on.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vd.data.store import EXTRACTOR_KEYS, Failure
from vd.errors import UserError, one_line
from vd.extract.tta import TTAConfig, combine
from vd.score.timeline import Segment, WindowScore  # noqa: F401  (they live in timeline)

LABEL_NAMES = {1: "violent", 0: "nonviolent"}
_BACKBONES: dict = {}  # (backbone, weights, layer) -> Backbone: each is built once per process


@dataclass
class ClipScore:
    """The score of one clip. ``true_label`` is what its folder says (-1 unknown)."""

    path: str
    video: str
    true_label: int
    violent_probability: float
    label: int
    views: dict                       # view name -> violent probability
    spread: float                     # max − min over the views
    n_frames: int
    fps: float
    duration_s: float                 # presentation time of the last frame + one frame interval
    frame_index: list = field(default_factory=list)
    windows: list | None = None       # list[WindowScore] when a timeline was asked for
    segments: list | None = None      # list[Segment]
    notes: list = field(default_factory=list)
    alarm: bool = False               # violent_probability ≥ the threshold in force
    attention: list | None = None     # --explain: [{frame, time_s, weight}] per sampled frame

    @property
    def label_name(self) -> str:
        return LABEL_NAMES[self.label]

    def to_dict(self) -> dict:
        """JSON-ready: stable field names; ``label`` 1 = violent, plus ``label_name``."""
        d = asdict(self)
        d["label_name"] = self.label_name
        if self.windows is None:
            d.pop("windows")
            d.pop("segments")
        elif self.attention is None:
            for w in d["windows"]:
                for k in ("peak_frame", "peak_frame_s", "peak_weight"):
                    w.pop(k)
        if self.attention is None:
            d.pop("attention")
        return d


@dataclass
class PredictResult:
    model: Path
    threshold: float
    tta: dict
    threshold_source: str = "default"   # "default" (0.5), "run" (saved by vd evaluate), "--threshold"
    calibrated: bool = False            # probabilities went through the run's calibration
    clips: list[ClipScore] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0                   # frames that went through the backbone (all views)
    sheets: list = field(default_factory=list)   # --explain DIR: contact sheets written

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0


# --------------------------------------------------------------------------- the model side


def resolve_model(model, runs_root="runs") -> Path:
    """``--model`` or, when absent, the newest run under ``runs_root`` (one-line error if none).

    ``--model`` may be a run folder or a bundle file from ``vd export`` (``.vdm``): a bundle is
    verified against its manifest and unpacked once into a private cache folder
    (:func:`vd.model.bundle.open_bundle`), whose path is returned.
    """
    from vd.model.runfolder import newest_run

    if model is not None:
        path = Path(model)
        if path.is_file():
            from vd.model.bundle import open_bundle

            return open_bundle(path)
        if not path.is_dir():
            raise UserError(f"--model {model}: no such run folder or bundle file")
        return path
    found = newest_run(runs_root)
    if found is None:
        raise UserError(f"no trained model under {runs_root}/ (train one with `vd train "
                        f"features.h5`, or pass --model runs/NAME)")
    return found


_RANDOM_RE = re.compile(r"^random\(seed=(-?\d+)\)$")


def resolve_weights(recorded, weights: str | None, backbone: str = "the backbone") -> tuple[str, int]:
    """The backbone weights to build: ``weights`` if given, else what the run recorded.

    Returns (``--weights`` value, seed). A run trained on a weights file needs that file again:
    its sha256 is all the run knows. ``backbone`` names the network in the messages.
    """
    m = _RANDOM_RE.match(str(recorded or ""))
    seed = int(m.group(1)) if m else 0
    if weights is not None:
        return weights, seed
    if recorded == "imagenet":
        return "imagenet", 0
    if m:
        return "random", seed
    if str(recorded or "").startswith("sha256:"):
        raise UserError(f"the model was trained on features from a {backbone} weights file "
                        f"({str(recorded)[:19]}…); pass --weights PATH to that file")
    raise UserError(f"the model records {backbone} weights {recorded!r}, which predict cannot "
                    f"rebuild; pass --weights (imagenet, random or a file)")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return int(a) == int(b) and float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def check_extractor(recorded: dict, computed: dict, what: str = "the model") -> None:
    """Refuse features that mean something else: one line naming the first attribute that differs."""
    for key in EXTRACTOR_KEYS:
        if not _same(recorded.get(key), computed.get(key)):
            raise UserError(f"extractor mismatch: {key} is {computed.get(key)!r} here but "
                            f"{recorded.get(key)!r} in {what}; features would not mean what "
                            f"{what} learnt" + (" (pass --weights to match)" if key == "weights" else ""))


# Activations one backbone call may hold on a CPU, as frames × the network's largest layer
# output. A call's activations live together: VGG16's first convolutions are 12.8 MB a frame
# (224×224×64 float32), and one 100-frame TTA pass peaked at 5.4 GB RSS here (TF 2.21, oneDNN's
# pool allocator; 3.8 GB with the system allocator). 128 MB gives VGG16 10 frames a call (its
# per-frame speed on 2 cores was the same at 10 as at 100: bench numbers in the README) and the
# light backbones a clip's 100 views at once. On a GPU every view goes in one call.
CPU_ACTIVATION_BYTES = 128 * 2**20


def largest_activation_bytes(model) -> int:
    """Bytes of the largest float32 layer output of ``model`` for one frame (nested models
    included; layers without a static shape are skipped)."""
    from vd.extract.network import all_layers

    best = 0
    for layer in all_layers(model):
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            continue
        if shape and all(isinstance(d, int) for d in shape):
            best = max(best, int(np.prod(shape)) * 4)
    return best


def frames_per_call(backbone, n: int) -> int:
    """How many of ``n`` frames go through ``backbone`` in one call: all of them on a GPU, on a
    CPU at most ``CPU_ACTIVATION_BYTES`` of its largest activation (at least 1)."""
    cap = getattr(backbone, "_vd_frames_per_call", None)
    if cap is None:
        from vd import runtime

        per_frame = largest_activation_bytes(backbone.model)
        cap = 0 if runtime.gpu_count() or per_frame == 0 else max(1, CPU_ACTIVATION_BYTES // per_frame)
        backbone._vd_frames_per_call = cap  # 0: no cap
    return max(1, n if cap == 0 else min(n, cap))


def get_backbone(weights: str, layer: str | None, seed: int, backbone: str | None = None):
    """The backbone for these settings (None = the default backbone and its default layer), built once per
    process (the demo calls predict repeatedly)."""
    from vd.extract.network import Backbone, describe_weights
    from vd.extract.registry import get_spec

    spec = get_spec(backbone)
    layer = spec.check_layer(layer)
    label, _ = describe_weights(weights, seed)  # a file is keyed by its content
    key = (spec.name, label, layer)
    if key not in _BACKBONES:
        _BACKBONES[key] = Backbone(weights, layer, batch_frames=100, seed=seed, backbone=spec.name)
    return _BACKBONES[key]


class Predictor:
    """A loaded run plus the matching backbone and TTA settings; scores decoded clips.

    ``model``: a run folder (None = newest under ``runs_root``). ``weights``: ``--weights``
    (None = the run's own). ``threshold`` None = the run's. The backbone and layer are the
    ones the run's store recorded; ``spec`` is its registry entry (``spec.input_size``: the
    frames' side in pixels). The network is built on first use, so evaluating a feature store
    never builds it.
    """

    def __init__(self, model=None, *, weights: str | None = None, tta: TTAConfig = TTAConfig(),
                 threshold: float | None = None, runs_root="runs", explain: bool = False):
        from vd import runtime
        from vd.extract.network import describe_weights
        from vd.extract.registry import get_spec
        from vd.model.scoring import load_run

        runtime.load_keras()
        self.tta = tta
        self.run = load_run(resolve_model(model, runs_root))
        self.threshold = float(self.run.threshold if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"--threshold must be between 0 and 1, not {self.threshold:g}")
        if threshold is not None:
            self.threshold_source = "--threshold"
        elif "threshold_source" in (self.run.config or {}):
            self.threshold_source = f"run: {self.run.config['threshold_source']}"
        else:
            self.threshold_source = "default"
        # Run.violent_probability applies calibration.json when the run has one
        self.calibrated = getattr(self.run, "calibration", None) is not None
        self.explain = bool(explain)
        self.has_attention = None  # known after the first clip with explain
        self._probe = None
        rec = self.run.extractor or {}
        self.frames = int(self.run.frames)
        # the backbone and layer the model learnt from (one line if vd has no such backbone;
        # a layer it lacks becomes the default, and the check below names the difference)
        name = rec.get("backbone")
        if name is not None:
            try:
                get_spec(str(name))
            except UserError:
                raise UserError(f"the model {self.run.path} was trained on features from "
                                f"backbone {name!r}, which this vd does not have") from None
        self.spec = get_spec(None if name is None else str(name))
        self.layer = str(rec.get("layer")) if rec.get("layer") in self.spec.layers else self.spec.default_layer
        self._weights, self._seed = resolve_weights(rec.get("weights"), weights, self.spec.name)
        label, _ = describe_weights(self._weights, self._seed)
        self.computed = {"backbone": self.spec.name, "layer": self.layer, "weights": label,
                         "frames": self.frames, "image_size": self.spec.input_size,
                         "preprocess": self.spec.preprocess}
        check_extractor(rec, self.computed, f"the model {self.run.path}")
        self._backbone = None
        # the first call traces the model: pay it here, not on the first clip
        self.run.violent_probability(np.zeros((1, self.frames, self.run.dim), np.float32))

    @property
    def backbone(self):
        if self._backbone is None:
            self._backbone = get_backbone(self._weights, self.layer, self._seed, self.spec.name)
        return self._backbone

    @property
    def input_size(self) -> int:
        """Side of the square frames the backbone takes, in pixels."""
        return self.spec.input_size

    def features(self, pixels: np.ndarray, frame_numbers) -> np.ndarray:
        """(T, S, S, 3) RGB 0–255 (S = ``input_size``) → (V, T, D) float16 features of every
        TTA view."""
        from vd.extract.tta import make_views

        views = make_views(pixels, frame_numbers, self.tta)
        feats = self.backbone(views, batch_frames=frames_per_call(self.backbone, len(views)))
        return feats.reshape(len(self.tta.views), len(pixels), -1).astype(np.float16)

    def view_probabilities(self, feats: np.ndarray) -> np.ndarray:
        """(N, V, T, D) or (V, T, D) features → (N, V) or (V,) violent probabilities."""
        x = np.asarray(feats)
        lead = x.shape[:-2]
        p = self.run.violent_probability(x.reshape((-1,) + x.shape[-2:]))
        return p.reshape(lead)

    def attention(self, feats: np.ndarray):
        """(N, T, D) features of the original view → (N, T) attention weights, or None when the
        preset has no attention layer (nothing is made up in its place).

        The same numbers as ``Run.attention_weights``, from a probe model built once per
        Predictor (that method builds a new one, and traces it, on every call: seconds a clip).
        """
        from vd.score.explain import attention_probe

        if self._probe is None:
            self._probe = attention_probe(self.run.model) or False
        self.has_attention = self._probe is not False
        if not self.has_attention:
            return None
        x = np.asarray(feats, np.float32)
        return np.asarray(self._probe.predict(x, batch_size=256, verbose=0), np.float32)

    def clip_score(self, view_probs, *, path, video, true_label, n_frames, fps, frame_index,
                   duration_s: float | None = None) -> ClipScore:
        """``duration_s``: from the frames' presentation times (None: ``n_frames / fps``)."""
        p = np.asarray(view_probs, np.float64)
        if duration_s is None or not np.isfinite(duration_s):
            duration_s = n_frames / fps if fps > 0 else float("nan")
        score = combine(p)
        return ClipScore(path=str(path), video=video, true_label=int(true_label),
                         violent_probability=score, label=int(score >= self.threshold),
                         alarm=bool(score >= self.threshold),
                         views={v: float(x) for v, x in zip(self.tta.views, p)},
                         spread=float(p.max() - p.min()), n_frames=int(n_frames), fps=float(fps),
                         duration_s=float(duration_s),
                         frame_index=[int(i) for i in np.asarray(frame_index).ravel()])

    def iter_features(self, clips):
        """Decode each clip once and pass its TTA views through the backbone once.

        Yields ``(decoded, features)`` — ``decoded`` as :func:`vd.extract.clips.decode_clip`
        returns it (variant 0), ``features`` (V, T, D) float16 — or a :class:`Failure`, in
        input order (decoding runs in a background thread, ahead of the backbone).
        """
        from vd.extract.clips import decoded_stream

        for item in decoded_stream(list(clips), augment=1, seed=0, frames=self.frames,
                                   size=self.input_size):
            if isinstance(item, Failure):
                yield item
                continue
            try:
                feats = self.features(item.pixels, item.frame_index[0])
            except (MemoryError, UserError):
                raise
            except Exception as e:  # one clip never ends the batch
                yield Failure(item.clip.video, "score", one_line(e))
                continue
            yield item, feats

    def score_clips(self, clips, progress=None, on_pixels=None) -> tuple[list[ClipScore], list[Failure], int]:
        """Score whole clips. ``on_pixels(score, pixels)`` (``--explain DIR``) gets each scored
        clip with its (T, S, S, 3) uint8 sampled frames, while they are in memory."""
        from vd.score.explain import attention_rows

        scores, failures, frames = [], [], 0
        for item in self.iter_features(clips):
            if isinstance(item, Failure):
                failures.append(item)
            else:
                decoded, feats = item
                try:
                    frames += feats.shape[0] * feats.shape[1]
                    score = self.clip_score(
                        self.view_probabilities(feats), path=decoded.clip.path,
                        video=decoded.clip.video, true_label=decoded.clip.label,
                        n_frames=decoded.n_frames, fps=decoded.fps,
                        frame_index=decoded.frame_index[0], duration_s=decoded.duration_s)
                    if self.explain:  # with TTA: the original view's attention (view 0)
                        w = self.attention(feats[:1])
                        score.attention = attention_rows(
                            None if w is None else w[0], decoded.frame_index[0],
                            decoded.frame_time[0] if decoded.frame_time is not None else decoded.fps)
                        if on_pixels is not None:
                            on_pixels(score, decoded.pixels[:self.frames])
                    scores.append(score)
                except (MemoryError, UserError):
                    raise
                except Exception as e:  # one clip never ends the batch
                    failures.append(Failure(decoded.clip.video, "score", one_line(e)))
            if progress:
                progress(len(scores) + len(failures), frames, len(failures))
        return scores, failures, frames


def find_clips(paths) -> list:
    """Clips under each path (files as given, folders walked like stage one), deduplicated.

    ``video`` is the path as the user would write it (folder argument joined with the relative
    path). Missing paths and folders without videos are a usage error (nothing is done).
    """
    import dataclasses

    from vd.data.discover import discover

    if not paths:
        raise UserError("give at least one video file or folder")
    clips, seen = [], set()
    for p in paths:
        for c in discover(p):
            key = c.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            shown = str(c.path) if Path(p).is_file() else str(Path(p) / c.video)
            clips.append(dataclasses.replace(c, video=shown))
    return clips


def predict_paths(paths, model=None, *, tta: bool = True, angle: float | None = None,
                  threshold: float | None = None, weights: str | None = None,
                  window: float | None = None, stride: float | None = None, runs_root="runs",
                  predictor: Predictor | None = None, progress=None, explain: bool = False,
                  explain_dir=None) -> PredictResult:
    """Score every video under ``paths``; the demo's entry point.

    ``window``/``stride`` (seconds) ask for a timeline per clip (stride defaults to half the
    window). Pass a ``predictor`` to reuse a loaded model across calls. ``progress(done, total,
    frames, seconds, failed)`` is called after each clip. ``explain`` adds each clip's attention
    weights per sampled frame (:mod:`vd.score.explain`); ``explain_dir`` (implies
    ``explain``) also writes a contact sheet per clip there. Raises :class:`UserError` for usage
    problems; per-clip failures are in ``result.failures``.
    """
    from vd.score.timeline import check_window, score_timeline

    if window is not None:
        stride = check_window(window, stride)
    elif stride is not None:
        raise UserError("--stride needs --window")
    explain = explain or explain_dir is not None
    sheets = None
    if explain_dir is not None:
        from vd.score.explain import SheetWriter

        sheets = SheetWriter(explain_dir)
    clips = find_clips(paths)
    if predictor is None:
        cfg = TTAConfig(enabled=tta, angle=10.0 if angle is None else float(angle))
        predictor = Predictor(model, weights=weights, tta=cfg, threshold=threshold,
                              runs_root=runs_root, explain=explain)
    elif threshold is not None:
        raise UserError("give the threshold to the Predictor, not to predict_paths")
    else:
        explain = explain or predictor.explain
        predictor.explain = explain
    result = PredictResult(model=predictor.run.path, threshold=predictor.threshold,
                           tta=predictor.tta.describe(),
                           threshold_source=predictor.threshold_source,
                           calibrated=predictor.calibrated)
    on_pixels = sheets.write if sheets is not None else None
    start = time.perf_counter()

    def tick(done, frames, failed):
        if progress:
            progress(done, len(clips), frames, time.perf_counter() - start, failed)

    if window is None:
        result.clips, result.failures, result.frames = predictor.score_clips(
            clips, progress=tick, on_pixels=on_pixels)
    else:
        for clip in clips:
            try:
                score, frames = score_timeline(predictor, clip, window, stride, on_pixels=on_pixels)
                result.clips.append(score)
                result.frames += frames
            except (MemoryError, UserError, KeyboardInterrupt):
                raise
            except Exception as e:
                result.failures.append(Failure(clip.video, "decode", one_line(e)))
            tick(len(result.clips) + len(result.failures), result.frames, len(result.failures))
    if explain and predictor.has_attention is False:
        from vd.score.explain import no_attention_note

        result.notes.append(no_attention_note(predictor.run))
    if sheets is not None:
        result.sheets = sheets.written
    result.seconds = time.perf_counter() - start
    return result
