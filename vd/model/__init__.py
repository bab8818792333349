"""Features to scores: presets, the model builder, loss/schedule/callbacks, training, scoring.

Never imports ``vd.extract``: a model sees feature tensors, not pixels.
"""

from vd import runtime as _runtime  # noqa: F401  (env defaults before TF loads)
