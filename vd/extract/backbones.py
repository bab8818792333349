"""The backbone registry: what each feature extractor is, known in one place.

A backbone turns uint8 RGB frames (N, S, S, 3) into one feature vector per frame. Its spec
holds everything a store or a run must record to say what a feature row means, and everything
a consumer needs to rebuild it: name, square input size, the layers it can be cut at (with
their feature dimension), the preprocessing done inside the graph, and a rough cost. Nothing
outside ``vd/extract`` names a backbone's numbers: it asks :func:`get_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vd.errors import UserError


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone.

    ``input_size``: frames are resized to (input_size, input_size); ``layers``: layer name →
    feature dimension, first = default; ``preprocess``: the recorded description of the pixel
    path (resize, colour order, normalisation in the graph).
    """

    name: str
    input_size: int
    layers: dict
    preprocess: str

    @property
    def default_layer(self) -> str:
        return next(iter(self.layers))

    def feature_dim(self, layer: str | None = None) -> int:
        return int(self.layers[layer or self.default_layer])


REGISTRY: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        name="vgg16",
        input_size=224,
        layers={"fc2": 4096, "fc1": 4096},
        preprocess="resize224-area|bgr2rgb|keras.vgg16.preprocess_input(caffe)",
    ),
}
DEFAULT_BACKBONE = "vgg16"


def get_spec(name: str | None = None) -> BackboneSpec:
    """The spec of ``name`` (default: VGG16); one-line error naming the choices otherwise."""
    key = DEFAULT_BACKBONE if name is None else str(name)
    if key not in REGISTRY:
        raise UserError(f"unknown backbone {key!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[key]
