"""Pixels: decoding and frame sampling, training augmentation and TTA views, the VGG16 backbone."""

from vd import runtime as _runtime  # noqa: F401  (env defaults before cv2/TF load)
