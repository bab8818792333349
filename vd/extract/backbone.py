"""VGG16 cut at fc2 (or fc1): one 4096-d vector per RGB frame.

``keras.applications.VGG16(include_top=True)`` with weights from ImageNet (Keras downloads and
caches them on first use), a local file, or a seeded random initialisation — always the one the
user named, never a silent fallback. Frames go through the network in fixed-size batches with
a compiled call (``predict_on_batch``), never one by one; the last batch is padded so the
compiled function is traced once.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from vd import runtime as _runtime  # noqa: F401  (oneDNN on, logs quiet: before Keras loads)
from vd.errors import UserError

LAYERS = ("fc2", "fc1")
PREPROCESS = "resize224-area|bgr2rgb|keras.vgg16.preprocess_input(caffe)"
WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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


def extractor_attrs(weights_label: str, layer: str) -> dict:
    """What a feature row means (store attributes), known before the network is built."""
    import cv2

    keras = _runtime.load_keras()
    return {
        "backbone": "vgg16",
        "layer": layer,
        "weights": weights_label,
        "image_size": 224,
        "preprocess": PREPROCESS,
        "feature_dim": 4096,  # fc1 and fc2 both
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "opencv_version": cv2.__version__,
    }


IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)


def preprocess(frames_rgb: np.ndarray) -> np.ndarray:
    """RGB pixels on 0–255 (N, 224, 224, 3) → VGG16's input (BGR, ImageNet means removed).

    Keras' own ``vgg16.preprocess_input`` on the host: the reference that the in-graph
    :func:`vgg_preprocess_layer` is tested against, and the naive peers' way in ``bench/``.
    """
    from keras.applications import vgg16

    return vgg16.preprocess_input(np.array(frames_rgb, dtype=np.float32, copy=True))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pixels as 8-bit, like any decoded frame: augmented/TTA views are rounded and clipped."""
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def vgg_preprocess_layer():
    """A layer doing ``vgg16.preprocess_input`` inside the graph, on the accelerator.

    The network then takes uint8 RGB frames: 4x less to copy to a GPU than float32, and no
    float pass over every pixel on the host (the host-side version kept an H200 ~90% idle).
    """
    keras = _runtime.load_keras()
    from keras import ops

    class VggPreprocess(keras.layers.Layer):
        def call(self, x):
            x = ops.cast(x, "float32")
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(IMAGENET_BGR_MEANS, "float32")

    return VggPreprocess(name="vgg16_preprocess")


class Backbone:
    """The frozen feature extractor. Call it on RGB frames (0–255) to get (N, D) float32."""

    def __init__(self, weights: str = "imagenet", layer: str = "fc2", batch_frames: int = 32, seed: int = 0):
        if layer not in LAYERS:
            raise UserError(f"--layer must be one of {', '.join(LAYERS)}, not {layer!r}")
        self.weights_label, weights_path = describe_weights(weights, seed)
        self.layer = layer
        self.batch_frames = int(batch_frames)
        self.model = _build(weights, weights_path, layer, seed, self.weights_label)
        self.dim = int(self.model.output_shape[-1])

    @property
    def attrs(self) -> dict:
        """The extractor attributes every store and trained model carries."""
        return extractor_attrs(self.weights_label, self.layer)

    def __call__(self, frames_rgb: np.ndarray, batch_frames: int | None = None) -> np.ndarray:
        """(N, 224, 224, 3) RGB 0–255 (uint8, or float rounded to 8 bits) → (N, D) float32,
        in batches of ``batch_frames``
        (default: the one given at construction)."""
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
            out[start:start + m] = np.asarray(self.model.predict_on_batch(chunk))[:m]
        return out


@functools.lru_cache(maxsize=2)
def _build(weights: str, weights_path: Path | None, layer: str, seed: int, label: str):
    """The extractor network; kept for reuse within a process (extract → predict → evaluate in
    one run, or many commands in tests build VGG16 once: ~10 s on 2 CPU cores). ``label``
    (with a weights file's sha256) is part of the key, so a changed file is loaded again."""
    keras = _runtime.load_keras()

    if weights == "random":
        keras.utils.set_random_seed(int(seed))
        full = keras.applications.VGG16(include_top=True, weights=None)
    elif weights_path is not None:
        full = keras.applications.VGG16(include_top=True, weights=None)
        try:
            full.load_weights(str(weights_path))
        except Exception as e:  # wrong file: say which, in one line
            raise UserError(f"cannot load VGG16 weights from {weights_path}: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    else:
        try:
            full = keras.applications.VGG16(include_top=True, weights="imagenet")
        except Exception as e:
            raise UserError(
                "could not get the ImageNet VGG16 weights (no internet? "
                f"{type(e).__name__}); copy {WEIGHTS_FILE} from a machine with internet to "
                "~/.keras/models/ or pass --weights PATH, or use --weights random explicitly"
            ) from None
    cut = keras.Model(full.input, full.get_layer(layer).output, name=f"vgg16_to_{layer}")
    frames = keras.Input((224, 224, 3), dtype="uint8", name="rgb_uint8")
    return keras.Model(frames, cut(vgg_preprocess_layer()(frames)), name=f"vgg16_{layer}")
