"""A registered backbone (:mod:`vd.extract.registry`) as a callable: uint8 RGB frames → (N, D).

``keras.applications`` networks with weights from ImageNet (Keras downloads and caches them on
first use), a local file, or a seeded random initialisation — always the one the user named,
never a silent fallback. The preprocessing is inside the graph, so the network takes uint8
frames. Frames go through the network in fixed-size batches with one compiled call, traced
once for any batch size (:func:`vd.runtime.inference_graph`; ``predict_on_batch`` under other
backends), never one by one; a short last batch is padded to a power of two so only a handful
of shapes are ever run (and compiled, where XLA or JAX compile per shape).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vd import runtime as _runtime  # noqa: F401  (oneDNN on, logs quiet: before Keras loads)
from vd.errors import UserError, one_line
from vd.hashing import sha256_file

from vd.extract.registry import BackboneSpec, get_spec, thumbnail_layer


def describe_weights(weights: str, seed: int = 0) -> tuple[str, Path | None]:
    """``--weights`` value → (what the store records, local file or None). Checks files exist."""
    if weights == "imagenet":
        return "imagenet", None
    if weights == "random":
        return f"random(seed={int(seed)})", None
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"--weights must be 'imagenet', 'random' or a weights file; not found: {weights}")
    return f"sha256:{sha256_file(path)}", path


def extractor_attrs(weights_label: str, layer: str | None = None, backbone: str | None = None) -> dict:
    """What a feature row means (store attributes), known before the network is built.

    ``backbone`` None = VGG16, ``layer`` None = the backbone's default (checked: one line if
    the backbone has no such layer)."""
    import cv2

    spec = get_spec(backbone)
    layer = spec.check_layer(layer)
    keras = _runtime.load_keras()
    return {
        "backbone": spec.name,
        "layer": layer,
        "weights": weights_label,
        "image_size": spec.input_size,
        "preprocess": spec.preprocess,
        "feature_dim": spec.feature_dim(layer),
        **({"pixels": spec.pixels} if spec.pixels else {}),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "opencv_version": cv2.__version__,
    }


def preprocess(frames_rgb: np.ndarray) -> np.ndarray:
    """RGB pixels on 0–255 (N, 224, 224, 3) → VGG16's input (BGR, ImageNet means removed).

    Keras' own ``vgg16.preprocess_input`` on the host: the reference that the in-graph
    :func:`vd.extract.registry.vgg_preprocess_layer` is tested against, and the naive peers'
    way in ``bench/``.
    """
    from keras.applications import vgg16

    return vgg16.preprocess_input(np.array(frames_rgb, dtype=np.float32, copy=True))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pixels as 8-bit, like any decoded frame: augmented/TTA views are rounded and clipped."""
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


class Backbone:
    """The frozen feature extractor. Call it on RGB frames (0–255) to get (N, D) float32.

    ``backbone``: a registry name (default VGG16); ``layer`` None = its default layer.
    """

    def __init__(self, weights: str = "imagenet", layer: str | None = None, batch_frames: int = 32,
                 seed: int = 0, backbone: str | None = None):
        self.spec: BackboneSpec = get_spec(backbone)
        self.layer = self.spec.check_layer(layer)
        self.weights_label, weights_path = describe_weights(weights, seed)
        self.batch_frames = int(batch_frames)
        if self.batch_frames < 1:
            raise UserError(f"--batch-frames must be at least 1, not {batch_frames}")
        self.model = _build(self.spec.name, weights, weights_path, self.layer, seed, self.weights_label)
        self._forward = _forward_of(self.model)   # traced on first call
        self.dim = int(self.model.output_shape[-1])

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def attrs(self) -> dict:
        """The extractor attributes every store and trained model carries."""
        return extractor_attrs(self.weights_label, self.layer, self.spec.name)

    def __call__(self, frames_rgb: np.ndarray, batch_frames: int | None = None) -> np.ndarray:
        """(N, S, S, 3) RGB 0–255 (uint8, or float rounded to 8 bits; S = ``input_size``) →
        (N, D) float32, in batches of ``batch_frames`` (default: the one given at construction)."""
        s = self.spec.input_size
        if frames_rgb.ndim != 4 or tuple(frames_rgb.shape[1:]) != (s, s, 3):
            raise ValueError(f"{self.spec.name} takes (N, {s}, {s}, 3) RGB frames, "
                             f"not {tuple(frames_rgb.shape)}")
        n = len(frames_rgb)
        out = np.empty((n, self.dim), np.float32)
        b = int(batch_frames) if batch_frames else self.batch_frames
        for start in range(0, n, b):
            chunk = to_uint8(frames_rgb[start:start + b])
            m = len(chunk)
            # Pad a short (last) chunk to a power of two: a handful of traced shapes in all,
            # and at most half of a small batch computed for nothing.
            size = min(b, max(8, 1 << (m - 1).bit_length()))
            if m < size:
                chunk = np.concatenate([chunk, np.zeros((size - m,) + chunk.shape[1:], np.uint8)])
            out[start:start + m] = np.asarray(self._forward(chunk))[:m]
        return out


@functools.lru_cache(maxsize=2)
def _forward_of(model):
    """The network's inference call: one graph for any batch size under TensorFlow, with XLA
    where Keras would use it (a GPU); ``predict_on_batch`` elsewhere. Cached like
    :func:`_build`'s networks, so Backbones that share a network share its one trace."""
    graph = _runtime.inference_graph(model, model.jit_compile)
    return graph if graph is not None else model.predict_on_batch


def all_layers(model):
    """The layers of ``model`` in order, those of nested models in their place."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from all_layers(layer)
        else:
            yield layer


def he_normal_kernels(model, seed: int) -> None:
    """Redraw every Conv2D / DepthwiseConv2D / Dense kernel of ``model`` from N(0, 2/fan_in),
    seeded (numpy), in layer order; biases and BatchNorm statistics stay as built.

    What ``--weights random`` means for backbones whose spec says ``random_init="he_normal"``:
    variance-preserving weights keep random features in float16's range (Keras' default
    initialisers make MobileNetV3's pooled output ~1e-10, stored as 0).
    """
    rng = np.random.default_rng(int(seed))
    for layer in all_layers(model):
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        shape = tuple(int(d) for d in layer.kernel.shape)
        fan_in = int(np.prod(shape[:-2])) if kind == "DepthwiseConv2D" else int(np.prod(shape[:-1]))
        layer.kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32))


@functools.lru_cache(maxsize=2)
def _build(name: str, weights: str, weights_path: Path | None, layer: str, seed: int, label: str):
    """The extractor network; kept for reuse within a process (extract → predict → evaluate in
    one run, or many commands in tests build VGG16 once: ~10 s on 2 CPU cores). ``label``
    (with a weights file's sha256) is part of the key, so a changed file is loaded again."""
    keras = _runtime.load_keras()
    spec = get_spec(name)
    if weights == "random":
        keras.utils.set_random_seed(int(seed))
        full = spec.build_application(None)
        if spec.random_init == "he_normal":
            he_normal_kernels(full, seed)
    elif weights_path is not None:
        full = spec.build_application(None)
        try:
            full.load_weights(str(weights_path))
        except Exception as e:  # wrong file: say which, in one line
            raise UserError(f"cannot load {spec.application} weights from {weights_path}: {one_line(e)}") from None
    else:
        try:
            full = spec.build_application("imagenet")
        except Exception as e:
            raise UserError(
                f"could not get the ImageNet {spec.application} weights (no internet? "
                f"{type(e).__name__}); copy {spec.weights_file} from a machine with internet to "
                "~/.keras/models/ or pass --weights PATH, or use --weights random explicitly"
            ) from None
    cut = keras.Model(full.input, full.get_layer(layer).output, name=f"{spec.base_name}_to_{layer}")
    s = spec.input_size
    frames = keras.Input((s, s, 3), dtype="uint8", name="rgb_uint8")
    out = cut(spec.preprocess_layer()(frames))
    if spec.pixels:
        out = keras.layers.Concatenate(name="features_and_pixels")(
            [out, thumbnail_layer(s, spec.pixels)(frames)])
    return keras.Model(frames, out, name=f"{spec.base_name}_{layer}" + ("_pixels" if spec.pixels else ""))
