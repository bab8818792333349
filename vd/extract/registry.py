"""The backbone registry: what each feature extractor is, known in one place.

A backbone turns uint8 RGB frames (N, S, S, 3) into one feature vector per frame. Its spec
holds everything a store or a run must record to say what a feature row means, and everything
a consumer needs to rebuild it: name, square input size, the layers it can be cut at (with
their feature dimension), the preprocessing done inside the graph (a recorded description and
the layer that does it on uint8 input), how to build it from ``keras.applications``, the
ImageNet weights file (named in the offline error) and a rough cost. Nothing outside
``vd/extract`` names a backbone's numbers: it asks :func:`get_spec`.

This module imports no Keras at load time (``vd extract --help`` lists the registry without
starting TensorFlow); the layers and networks are made on demand.

Entries:

- ``vgg16``: ``keras.applications.VGG16(include_top=True)`` cut at ``fc2`` (default) or
  ``fc1``, 4096-d; Caffe preprocessing (RGB→BGR, ImageNet means removed) by
  :func:`vgg_preprocess_layer` in the graph. vd's original extractor, unchanged.
- ``mobilenet_v3_small`` / ``mobilenet_v3_large``: ``include_top=False``, global average
  pooling of the last 1×1 conv (576-d / 960-d); the application's own ``include_preprocessing``
  (``Rescaling(1/127.5, offset=-1)``: 0–255 → [-1, 1]) after a cast of the uint8 frames.
- ``efficientnetv2_b0``: ``include_top=False``, global average pooling of ``top_activation``
  (1280-d); its own ``include_preprocessing`` (``Rescaling(1/255)`` then ``Normalization`` with
  the ImageNet mean/variance: input 0–255) after the cast.

All four take 224×224 frames; the decoder resizes to whatever ``input_size`` an entry names.

Any entry with ``+pixels`` after its name (``mobilenet_v3_small+pixels``) is that backbone
with each frame's grey thumbnail appended to its feature vector: the frame as the network
sees it (S×S RGB), converted to grey (ITU-R 601 weights) and averaged over S/32 × S/32 blocks
into 32×32 = 1,024 more columns, on 0–255, computed in the same graph. Networks see what is in
a picture; the thumbnails let a model see where the picture changed and whether all of it
moved at once (a shaking camera, a light switched on), which pooled features cannot tell:
:class:`vd.model.layers.PixelMotion` turns consecutive thumbnails into motion with the
camera's own shift and the picture's brightness taken out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vd.errors import UserError

IMAGENET_BGR_MEANS = (103.939, 116.779, 123.68)
PIXELS_SUFFIX = "+pixels"
PIXELS_SIDE = 32          # thumbnail side: 32×32 grey values appended per frame
GREY_WEIGHTS = (0.299, 0.587, 0.114)   # R, G, B (ITU-R BT.601, as cv2.COLOR_RGB2GRAY)


def vgg_preprocess_layer():
    """A layer doing ``vgg16.preprocess_input`` (Caffe mode) inside the graph, on uint8 RGB.

    The network then takes uint8 RGB frames: 4x less to copy to a GPU than float32, and no
    float pass over every pixel on the host (the host-side version kept an H200 ~90% idle).
    """
    from vd import runtime

    keras = runtime.load_keras()
    from keras import ops

    class VggPreprocess(keras.layers.Layer):
        def call(self, x):
            x = ops.cast(x, "float32")
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(IMAGENET_BGR_MEANS, "float32")

    return VggPreprocess(name="vgg16_preprocess")


def cast_float_layer():
    """uint8 → float32 on 0–255, in the graph: the application's own preprocessing
    (``include_preprocessing=True``) takes it from there."""
    from vd import runtime

    keras = runtime.load_keras()
    from keras import ops

    class CastFloat(keras.layers.Layer):
        def call(self, x):
            return ops.cast(x, "float32")

    return CastFloat(name="uint8_to_float32")


def thumbnail_layer(input_size: int, side: int = PIXELS_SIDE):
    """uint8 RGB (N, S, S, 3) → (N, side²) float32 grey thumbnails on 0–255 (block means)."""
    from vd import runtime

    keras = runtime.load_keras()
    from keras import ops

    block = input_size // side

    class GreyThumbnail(keras.layers.Layer):
        def call(self, x):
            x = ops.cast(x, "float32")
            grey = ops.sum(x * ops.convert_to_tensor(GREY_WEIGHTS, "float32"), axis=-1, keepdims=True)
            small = ops.average_pool(grey, pool_size=block, strides=block, padding="valid")
            return ops.reshape(small, (-1, side * side))

    return GreyThumbnail(name="grey_thumbnail")


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone.

    ``input_size``: frames are resized to (input_size, input_size); ``layers``: layer name →
    feature dimension, first = default; ``preprocess``: the recorded description of the pixel
    path (resize, colour order, normalisation in the graph); ``preprocess_layer``: makes the
    layer that takes uint8 RGB (N, S, S, 3) to what ``application`` expects;
    ``application``: the ``keras.applications`` constructor, called with ``app_kwargs``;
    ``weights_file``: the ImageNet file Keras caches in ~/.keras/models/ (for ``app_kwargs``);
    ``random_init``: what ``--weights random`` means: ``"keras"`` (the application's own
    initialisers, after ``keras.utils.set_random_seed(seed)``) or ``"he_normal"`` (every conv and
    dense kernel redrawn from N(0, 2/fan_in) with numpy's generator seeded by ``seed``: Keras'
    default init makes MobileNetV3's pooled features ~1e-10, which float16 stores as 0);
    ``gflops``: GFLOP per frame (2 × the multiply-adds of its conv/dense layers to the cut,
    counted on the built graph by ``bench/backbones.py``); ``note``: what it is good for.
    """

    name: str
    input_size: int
    layers: dict
    preprocess: str
    preprocess_layer: object = field(repr=False, compare=False)
    application: str = ""
    app_kwargs: dict = field(default_factory=dict)
    weights_file: str = ""
    random_init: str = "keras"
    gflops: float = 0.0
    note: str = ""
    pixels: int = 0          # thumbnail side appended per frame (``+pixels``); 0 = none

    @property
    def default_layer(self) -> str:
        return next(iter(self.layers))

    def feature_dim(self, layer: str | None = None) -> int:
        return int(self.layers[self.check_layer(layer)])

    def check_layer(self, layer: str | None) -> str:
        """``layer`` (None = the default) if this backbone has it; one-line error otherwise."""
        if layer is None:
            return self.default_layer
        if layer not in self.layers:
            raise UserError(f"--layer must be one of {', '.join(self.layers)} for backbone "
                            f"{self.name}, not {layer!r}")
        return str(layer)

    @property
    def base_name(self) -> str:
        """The network's own entry (``vgg16`` for ``vgg16+pixels``)."""
        return self.name.removesuffix(PIXELS_SUFFIX)

    def describe(self) -> str:
        """One line for ``--help`` and ``vd info``: layers with their dimension, and the cost."""
        dims = sorted(set(self.layers.values()))
        layers = "/".join(self.layers)
        dim = "/".join(str(d) for d in dims)
        return f"{self.name} ({layers}, {dim}-d, ~{self.gflops:.3g} GFLOP/frame)"

    def build_application(self, weights):
        """The full ``keras.applications`` network (``weights``: None or 'imagenet')."""
        from vd import runtime

        keras = runtime.load_keras()
        return getattr(keras.applications, self.application)(weights=weights, **self.app_kwargs)


_S = 224
_POOLED = dict(include_top=False, pooling="avg", include_preprocessing=True,
               input_shape=(_S, _S, 3))

REGISTRY: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        name="vgg16",
        input_size=_S,
        layers={"fc2": 4096, "fc1": 4096},
        preprocess="resize224-area|bgr2rgb|keras.vgg16.preprocess_input(caffe)",
        preprocess_layer=vgg_preprocess_layer,
        application="VGG16",
        app_kwargs=dict(include_top=True),
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        gflops=30.9,
        note="the reference extractor (the hybrid preset's design); slow on a CPU",
    ),
    "mobilenet_v3_small": BackboneSpec(
        name="mobilenet_v3_small",
        input_size=_S,
        layers={"avg_pool": 576},
        preprocess="resize224-area|bgr2rgb|keras.mobilenet_v3(include_preprocessing):x/127.5-1",
        preprocess_layer=cast_float_layer,
        application="MobileNetV3Small",
        app_kwargs=_POOLED,
        weights_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        random_init="he_normal",
        gflops=0.110,
        note="fastest; for CPUs and small devices",
    ),
    "mobilenet_v3_large": BackboneSpec(
        name="mobilenet_v3_large",
        input_size=_S,
        layers={"avg_pool": 960},
        preprocess="resize224-area|bgr2rgb|keras.mobilenet_v3(include_preprocessing):x/127.5-1",
        preprocess_layer=cast_float_layer,
        application="MobileNetV3Large",
        app_kwargs=_POOLED,
        weights_file="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        random_init="he_normal",
        gflops=0.428,
        note="fast; better ImageNet accuracy than the small one",
    ),
    "efficientnetv2_b0": BackboneSpec(
        name="efficientnetv2_b0",
        input_size=_S,
        layers={"avg_pool": 1280},
        preprocess="resize224-area|bgr2rgb|keras.efficientnet_v2(include_preprocessing):"
                   "x/255,imagenet-mean-std",
        preprocess_layer=cast_float_layer,
        application="EfficientNetV2B0",
        app_kwargs=_POOLED,
        weights_file="efficientnetv2-b0_notop.h5",
        gflops=1.43,
        note="most accurate of the light ones",
    ),
}
DEFAULT_BACKBONE = "vgg16"


def get_spec(name: str | None = None) -> BackboneSpec:
    """The spec of ``name`` (default: VGG16), ``+pixels`` after any entry's name included;
    one-line error naming the choices otherwise."""
    key = DEFAULT_BACKBONE if name is None else str(name)
    base = key.removesuffix(PIXELS_SUFFIX)
    if base not in REGISTRY:
        raise UserError(f"unknown backbone {key!r}; choose one of {', '.join(REGISTRY)} "
                        f"(each also as NAME{PIXELS_SUFFIX})")
    spec = REGISTRY[base]
    if key == base:
        return spec
    if spec.input_size % PIXELS_SIDE:
        raise UserError(f"{key}: the input size {spec.input_size} is not a multiple of {PIXELS_SIDE}")
    extra = PIXELS_SIDE * PIXELS_SIDE
    return dataclasses.replace(
        spec, name=key, layers={k: v + extra for k, v in spec.layers.items()},
        preprocess=f"{spec.preprocess}|+grey{PIXELS_SIDE}x{PIXELS_SIDE}(bt601,block-mean,0-255)",
        pixels=PIXELS_SIDE, note=f"{spec.note}; plus a {PIXELS_SIDE}×{PIXELS_SIDE} grey thumbnail per frame")


def names() -> list[str]:
    return list(REGISTRY)
